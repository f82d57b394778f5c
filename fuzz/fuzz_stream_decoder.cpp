// SPDX-License-Identifier: MIT
// Fuzzes the streaming detokenizer (src/tokenizer/stream_decoder.cpp) that turns generated ids into the UTF-8 deltas
// of the SSE stream. Input: a byte stream read as ids (2 bytes each, little-endian, scaled over the vocabulary and a
// little past it, so unknown ids occur) and, after a 0xFF 0xFF marker, raw bytes fed through push_bytes.
// The header's contract is checked: nothing throws, every delta is valid UTF-8, and the concatenated deltas equal
// Tokenizer::decode of the whole sequence.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "fuzz_util.h"
#include "io/json_util.h"
#include "tokenizer/stream_decoder.h"

// Loads the tokenizer (and the rest of the fixed state) before fuzzing starts, outside the per-input timeout.
extern "C" int LLVMFuzzerInitialize(int*, char***) {
  (void)ds::fuzz::v3_tokenizer();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const ds::tok::Tokenizer& t = ds::fuzz::v3_tokenizer();
  const uint32_t span = uint32_t(t.vocab_size()) + 64;  // ids up to a little past the vocabulary
  std::vector<int32_t> ids;
  size_t i = 0;
  for (; i + 2 < size; i += 3) {
    const uint32_t v = data[i] | uint32_t(data[i + 1]) << 8 | uint32_t(data[i + 2]) << 16;
    if (v == 0xFFFFFF) {
      i += 3;
      break;
    }
    ids.push_back(int32_t(v % span) - 8);
  }
  for (bool skip : {false, true}) {
    ds::tok::StreamDecoder d(t, skip);
    std::string all;
    for (int32_t id : ids) {
      const std::string delta = d.push(id);
      if (!ds::io::is_valid_utf8(delta)) std::abort();
      all += delta;
    }
    const std::string tail = d.flush();
    if (!ds::io::is_valid_utf8(tail)) std::abort();
    all += tail;
    if (all != t.decode(ids, skip)) {
      std::fprintf(stderr, "stream (%zu bytes) != decode (%zu bytes), skip_special=%d\n", all.size(),
                   t.decode(ids, skip).size(), int(skip));
      std::abort();
    }
    // Raw bytes: every delta valid UTF-8, nothing held after flush.
    if (i < size) {
      const std::string_view raw(reinterpret_cast<const char*>(data + i), size - i);
      for (size_t k = 0; k < raw.size(); k += 3)
        if (!ds::io::is_valid_utf8(d.push_bytes(raw.substr(k, 3)))) std::abort();
      if (!ds::io::is_valid_utf8(d.flush()) || d.pending_bytes() != 0) std::abort();
    }
  }
  return 0;
}
