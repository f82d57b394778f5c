// SPDX-License-Identifier: MIT
// Fuzzes tokenizer.json loading (src/tokenizer/tokenizer.cpp and its model/normalizer/pre-tokenizer parts) through
// Tokenizer::from_json_text, which parses the text and promises to throw ds::Error only: any other exception
// (a nlohmann type error, std::out_of_range, ...) escapes and is reported as a finding. A file that loads must then
// encode and decode a few fixed strings. Seeds are cut-down real tokenizers (the full ones are megabytes).
#include <cstdint>
#include <string>
#include <string_view>

#include "base/error.h"
#include "tokenizer/tokenizer.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  try {
    const ds::tok::Tokenizer t = ds::tok::Tokenizer::from_json_text(text);
    static const char* const kTexts[] = {"Hello, world! 123", "  \t\n<｜begin▁of▁sentence｜>x<think>",
                                         "\xE4\xBD\xA0\xE5\xA5\xBD \xF0\x9F\x98\x80 \xFF\xC3"};
    for (const char* s : kTexts) {
      for (bool special : {false, true}) {
        const std::vector<int32_t> ids = t.encode(s, special);
        (void)t.decode(ids);
        for (int32_t id : ids) (void)t.token_to_piece(id);
      }
    }
    (void)t.decode({-1, 0, 1, int32_t(t.vocab_size()), int32_t(t.vocab_size()) + 1});
  } catch (const ds::Error&) {
  }
  return 0;
}
