// SPDX-License-Identifier: MIT
// Reasoning split: separates `<think>…</think>` reasoning from the answer, for complete and streamed output.
// R1-style prompts already end in `<think>\n`, so the model emits only `</think>`; V3.1 non-thinking prompts end
// in `</think>`, so the output is all answer. Delimiters are recognised by token id when the vocabulary has them
// as single tokens (R1, V3.1): text that merely spells "</think>" in ordinary tokens cannot end the reasoning.
// With a vocabulary lacking them (the original V3), the parser falls back to matching the decoded text.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "tokenizer/stream_decoder.h"
#include "tokenizer/tokenizer.h"

namespace ds::tok {

struct ReasoningDelta {
  std::string reasoning;
  std::string content;
};

// True if a rendered prompt leaves the model inside a reasoning block (ends with "<think>" or "<think>\n").
bool prompt_opens_reasoning(std::string_view prompt);

class ReasoningParser {
 public:
  ReasoningParser(const Tokenizer& tok, bool starts_in_reasoning);
  ReasoningDelta push(int32_t id);
  ReasoningDelta flush();
  // Whole output at once (same result as pushing every id and flushing).
  ReasoningDelta parse(const std::vector<int32_t>& ids);
  bool in_reasoning() const { return state_ == State::Reasoning; }
  bool by_token_id() const { return open_id_ >= 0 && close_id_ >= 0; }

 private:
  enum class State { Start, Reasoning, Content };
  void route_text(std::string text, ReasoningDelta& d);
  void emit(const std::string& s, ReasoningDelta& d) { (state_ == State::Reasoning ? d.reasoning : d.content) += s; }

  const Tokenizer* tok_;
  int32_t open_id_ = -1, close_id_ = -1;
  State state_;
  StreamDecoder dec_;
  std::string held_;  // text mode: a suffix that might be the start of a tag
};

}  // namespace ds::tok
