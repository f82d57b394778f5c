// SPDX-License-Identifier: MIT
// Added (special and user-defined) tokens: whole-string matching before BPE, as HF's AddedVocabulary.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace ds::tok {

struct AddedToken {
  int32_t id = -1;
  std::string content;
  bool special = false;
  bool normalized = false;
};

// Leftmost-longest matcher over a set of strings (a byte trie; the token sets are small and start with
// a handful of distinct bytes, so a first-byte filter skips most positions).
class TokenMatcher {
 public:
  void add(std::string_view s, int32_t id);
  bool empty() const { return nodes_.size() <= 1; }
  // Finds the leftmost match at or after `from`; returns false if none. On success sets begin/len/id.
  bool find(std::string_view text, size_t from, size_t& begin, size_t& len, int32_t& id) const;

 private:
  struct Node {
    std::unordered_map<uint8_t, int32_t> next;
    int32_t id = -1;
  };
  std::vector<Node> nodes_{1};
  bool first_byte_[256] = {};
};

// A segment of input after added-token extraction: either an added token id, or plain text to pre-tokenize.
struct Segment {
  int32_t id;  // >= 0: an added token; -1: text
  size_t begin, len;
};

class AddedVocabulary {
 public:
  // `normalized_match`: for a normalized token, its content as the normalizer writes it (what HF matches in the
  // normalized text); empty means the content itself.
  void add(AddedToken t, std::string normalized_match = {});
  // Splits text as HF does: first on the non-normalized tokens, then on the normalized ones inside the
  // remaining text (without normalizing that text: the tokenizer does split_raw, normalizes, split_normalized).
  void split(std::string_view text, std::vector<Segment>& out) const;
  // The two passes of split(), for a tokenizer with a normalizer (offsets relative to `text`).
  void split_raw(std::string_view text, std::vector<Segment>& out) const;
  void split_normalized(std::string_view text, std::vector<Segment>& out) const;
  bool has_normalized() const { return !normalized_.empty(); }
  const AddedToken* find_id(int32_t id) const;
  int32_t find_content(std::string_view content) const;
  const std::vector<AddedToken>& tokens() const { return tokens_; }

 private:
  std::vector<AddedToken> tokens_;
  std::unordered_map<int32_t, size_t> by_id_;
  std::unordered_map<std::string, int32_t> by_content_;
  TokenMatcher raw_, normalized_;
};

}  // namespace ds::tok
