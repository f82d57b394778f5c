// SPDX-License-Identifier: MIT
// Streaming detokenizer: token ids in, UTF-8 text deltas out. Byte-level BPE tokens split characters, so the
// bytes of an incomplete character are held until it completes; genuinely invalid bytes become U+FFFD. The
// concatenated deltas equal Tokenizer::decode of the whole sequence, every delta is valid UTF-8, nothing throws.
#pragma once
#include <cstdint>
#include <string>

#include "tokenizer/tokenizer.h"

namespace ds::tok {

class StreamDecoder {
 public:
  explicit StreamDecoder(const Tokenizer& tok, bool skip_special = false) : tok_(&tok), skip_special_(skip_special) {}
  // Appends one token; returns the text that is now complete (possibly empty). Unknown ids add nothing.
  std::string push(int32_t id);
  // Feeds raw bytes (e.g. a token piece obtained elsewhere).
  std::string push_bytes(std::string_view bytes);
  // End of stream: held bytes of an unfinished character are emitted as U+FFFD.
  std::string flush();
  void reset() { pending_.clear(); }
  size_t pending_bytes() const { return pending_.size(); }

 private:
  const Tokenizer* tok_;
  bool skip_special_;
  std::string pending_;
};

}  // namespace ds::tok
