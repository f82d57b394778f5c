// SPDX-License-Identifier: MIT
// Fuzzes encode and decode of the real DeepSeek-V3 tokenizer (pre-tokenizer regexes, BPE, added-token matching)
// on arbitrary bytes. Properties checked, beyond no crash/UB: encode never throws; every id is valid; ordinary text
// (parse_special = false) of valid UTF-8 decodes back to exactly the input (byte-level BPE is lossless), and any
// input decodes to valid UTF-8.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "fuzz_util.h"
#include "io/json_util.h"

// Loads the tokenizer (and the rest of the fixed state) before fuzzing starts, outside the per-input timeout.
extern "C" int LLVMFuzzerInitialize(int*, char***) {
  (void)ds::fuzz::v3_tokenizer();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const ds::tok::Tokenizer& t = ds::fuzz::v3_tokenizer();
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  for (bool special : {false, true}) {
    const std::vector<int32_t> ids = t.encode(text, special);
    for (int32_t id : ids)
      if (!t.is_valid_id(id)) std::abort();
    const std::string back = t.decode(ids);
    if (!ds::io::is_valid_utf8(back)) std::abort();
    if (!special && ds::io::is_valid_utf8(text) && back != text) {
      std::fprintf(stderr, "round trip changed the text (%zu -> %zu bytes)\n", text.size(), back.size());
      std::abort();
    }
  }
  return 0;
}
