// SPDX-License-Identifier: MIT
// Prints generated tokens as they come: text through the tokenizer (never a partial UTF-8 character), or the ids
// as a JSON array when the model folder has no tokenizer.
#pragma once
#include <cstdint>
#include <cstdio>
#include <string>

#include "tokenizer/tokenizer.h"

namespace ds::app {

class TextOut {
 public:
  explicit TextOut(const tok::Tokenizer* t, FILE* f = stdout) : tok_(t), f_(f) {}
  void push(int32_t id) {
    if (!tok_) {
      std::fprintf(f_, "%s%d", first_ ? "[" : ", ", id);
      first_ = false;
      std::fflush(f_);
      return;
    }
    pending_ += tok_->token_to_piece(id);
    const size_t n = complete_prefix(pending_);
    std::fwrite(pending_.data(), 1, n, f_);
    std::fflush(f_);
    pending_.erase(0, n);
  }
  void finish() {
    if (!tok_) { std::fprintf(f_, first_ ? "[]\n" : "]\n"); return; }
    if (!pending_.empty()) std::fputs("\xEF\xBF\xBD", f_);  // bytes of an unfinished character
    pending_.clear();
    std::fputc('\n', f_);
  }

 private:
  // Length of the longest prefix that does not end inside a UTF-8 sequence.
  static size_t complete_prefix(const std::string& s) {
    size_t n = s.size(), i = n;
    int back = 0;
    while (i > 0 && back < 4 && (uint8_t(s[i - 1]) & 0xC0) == 0x80) { --i; ++back; }
    if (i == 0) return n;
    const uint8_t lead = uint8_t(s[i - 1]);
    const int need = lead >= 0xF0 ? 3 : lead >= 0xE0 ? 2 : lead >= 0xC0 ? 1 : 0;
    return need > back ? i - 1 : n;
  }
  const tok::Tokenizer* tok_;
  FILE* f_;
  std::string pending_;
  bool first_ = true;
};

}  // namespace ds::app
