// SPDX-License-Identifier: MIT
// Paths and prompt building shared by the tiny-R1 tests.
#pragma once
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "tokenizer/chat_template.h"
#include "tokenizer/tokenizer.h"

namespace ds::test {

inline const std::string kModel = std::string(DS_SOURCE_DIR) + "/models/tiny-r1";
inline const std::string kRef = std::string(DS_SOURCE_DIR) + "/tests/fixtures/tiny-r1";

// The prompt ids of one user question through the model's own chat template (generation prompt added).
inline std::vector<int32_t> tiny_r1_prompt(const tok::Tokenizer& tk, const tok::ChatTemplate& tmpl, const std::string& q) {
  tok::ChatOptions opt;
  opt.add_generation_prompt = true;
  return tok::encode_prompt(tk, tmpl.render(nlohmann::json::array({{{"role", "user"}, {"content", q}}}), opt));
}

}  // namespace ds::test
