// SPDX-License-Identifier: MIT
// Reasoning parser (see reasoning.h).
#include "tokenizer/reasoning.h"

namespace ds::tok {

namespace {
constexpr std::string_view kOpen = "<think>", kClose = "</think>";

// Length of the longest suffix of s that is a proper prefix of tag.
size_t partial_suffix(std::string_view s, std::string_view tag) {
  for (size_t n = std::min(s.size(), tag.size() - 1); n > 0; --n)
    if (s.substr(s.size() - n) == tag.substr(0, n)) return n;
  return 0;
}
}  // namespace

bool prompt_opens_reasoning(std::string_view p) {
  while (!p.empty() && (p.back() == '\n' || p.back() == ' ')) p.remove_suffix(1);
  return p.size() >= kOpen.size() && p.substr(p.size() - kOpen.size()) == kOpen;
}

ReasoningParser::ReasoningParser(const Tokenizer& tok, bool starts_in_reasoning)
    : tok_(&tok), state_(starts_in_reasoning ? State::Reasoning : State::Start), dec_(tok) {
  open_id_ = tok.token_to_id(kOpen);
  close_id_ = tok.token_to_id(kClose);
  if (open_id_ < 0 || close_id_ < 0) open_id_ = close_id_ = -1;
}

ReasoningDelta ReasoningParser::push(int32_t id) {
  ReasoningDelta d;
  if (by_token_id()) {
    if (id == open_id_ && state_ != State::Content) {
      emit(dec_.flush(), d);
      state_ = State::Reasoning;
      return d;
    }
    if (id == close_id_ && state_ != State::Content) {
      emit(dec_.flush(), d);
      state_ = State::Content;
      return d;
    }
    std::string text = dec_.push(id);
    // Before anything is seen, an output that does not open with <think> is plain content.
    if (state_ == State::Start && !text.empty()) {
      const size_t ws = text.find_first_not_of(" \t\r\n");
      if (ws != std::string::npos) state_ = State::Content;
    }
    emit(text, d);
    return d;
  }
  route_text(dec_.push(id), d);
  return d;
}

void ReasoningParser::route_text(std::string text, ReasoningDelta& d) {
  text.insert(0, held_);
  held_.clear();
  while (!text.empty()) {
    if (state_ == State::Content) {
      d.content += text;
      return;
    }
    if (state_ == State::Start) {
      const size_t ws = text.find_first_not_of(" \t\r\n");
      if (ws == std::string::npos) { held_ = text; return; }
      const std::string_view rest = std::string_view(text).substr(ws);
      if (rest.substr(0, kOpen.size()) == kOpen) {
        state_ = State::Reasoning;
        text.erase(0, ws + kOpen.size());
        continue;
      }
      if (kOpen.substr(0, rest.size()) == rest) { held_ = text; return; }  // maybe "<thi" so far
      state_ = State::Content;
      continue;
    }
    // Reasoning: look for the closing tag, holding back a possible partial tag at the end.
    const size_t at = text.find(kClose);
    if (at != std::string::npos) {
      d.reasoning += text.substr(0, at);
      text.erase(0, at + kClose.size());
      state_ = State::Content;
      continue;
    }
    const size_t keep = partial_suffix(text, kClose);
    d.reasoning += text.substr(0, text.size() - keep);
    held_ = text.substr(text.size() - keep);
    return;
  }
}

ReasoningDelta ReasoningParser::flush() {
  ReasoningDelta d;
  std::string tail = dec_.flush();
  if (by_token_id()) {
    emit(tail, d);
  } else {
    route_text(std::move(tail), d);
    if (!held_.empty()) {  // an unfinished tag at the very end is just text
      emit(held_, d);
      held_.clear();
    }
  }
  return d;
}

ReasoningDelta ReasoningParser::parse(const std::vector<int32_t>& ids) {
  ReasoningDelta all;
  for (int32_t id : ids) {
    ReasoningDelta d = push(id);
    all.reasoning += d.reasoning;
    all.content += d.content;
  }
  ReasoningDelta d = flush();
  all.reasoning += d.reasoning;
  all.content += d.content;
  return all;
}

}  // namespace ds::tok
