// SPDX-License-Identifier: MIT
// tokenizer.json "normalizer": Unicode NFC (Qwen2/2.5/3 and the R1-Distill-Qwen tokenizers), through utf8proc.
#pragma once
#include <string>
#include <string_view>

#include <nlohmann/json_fwd.hpp>

namespace ds::tok {

class Normalizer {
 public:
  // From tokenizer.json's "normalizer": null, {"type": "NFC"}, or a Sequence of those (empty included). Any other
  // normalizer is a ds::Error: silently skipping one would change ids.
  explicit Normalizer(const nlohmann::json& spec);

  bool identity() const { return !nfc_; }
  // Normalizes valid UTF-8 `text`. Returns false (out untouched) when the text is already normalized, which is the
  // common case and is decided without calling utf8proc.
  bool apply(std::string_view text, std::string& out) const;

 private:
  bool nfc_ = false;
};

// NFC of valid UTF-8 (exposed for tests and for normalizing added-token contents).
std::string nfc(std::string_view text);

}  // namespace ds::tok
