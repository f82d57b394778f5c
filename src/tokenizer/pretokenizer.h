// SPDX-License-Identifier: MIT
// Pre-tokenizer: HF `Split` regexes (behaviour "Isolated") applied in sequence, compiled with PCRE2 JIT.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json_fwd.hpp>

namespace ds::tok {

// A piece of the input: byte offset and length.
struct Span {
  uint32_t begin;
  uint32_t len;
};

class PreTokenizer {
 public:
  // Builds from tokenizer.json's "pre_tokenizer" object. Supported: Sequence, Split (Regex or String
  // pattern; behaviours Isolated, Removed; invert false), ByteLevel with add_prefix_space=false and
  // use_regex=false (a pure byte mapping, which the BPE stage applies). Anything else is a ds::Error.
  explicit PreTokenizer(const nlohmann::json& spec);
  ~PreTokenizer();
  PreTokenizer(const PreTokenizer&) = delete;
  PreTokenizer& operator=(const PreTokenizer&) = delete;

  // Splits valid UTF-8 `text` (offsets relative to text) and appends the pieces to out. A ds::Error when the
  // regexes take longer than kBudgetSeconds + kBudgetSecondsPerByte * text.size() (a hostile, backtracking pattern).
  void split(std::string_view text, std::vector<Span>& out) const;

  static constexpr double kBudgetSeconds = 1.0;
  static constexpr double kBudgetSecondsPerByte = 10e-6;

 private:
  struct Rule;
  std::vector<std::unique_ptr<Rule>> rules_;
};

}  // namespace ds::tok
