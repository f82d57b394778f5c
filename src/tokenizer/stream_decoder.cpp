// SPDX-License-Identifier: MIT
// Streaming detokenizer (see stream_decoder.h).
#include "tokenizer/stream_decoder.h"

#include "tokenizer/unicode.h"

namespace ds::tok {

std::string StreamDecoder::push(int32_t id) {
  if (skip_special_ && tok_->is_special(id)) return {};
  return push_bytes(tok_->token_to_piece(id));
}

std::string StreamDecoder::push_bytes(std::string_view bytes) {
  pending_.append(bytes);
  // Hold back only a tail that is a valid prefix of a character; everything before it is final, because
  // the U+FFFD substitution of a byte never depends on bytes after the point where its sequence failed.
  const size_t hold = utf8_incomplete_tail(pending_);
  const std::string_view ready(pending_.data(), pending_.size() - hold);
  std::string out = utf8_is_valid(ready) ? std::string(ready) : utf8_sanitize(ready);
  pending_.erase(0, pending_.size() - hold);
  return out;
}

std::string StreamDecoder::flush() {
  std::string out = utf8_sanitize(pending_);
  pending_.clear();
  return out;
}

}  // namespace ds::tok
