// SPDX-License-Identifier: MIT
// Added-token trie matching (see added_tokens.h).
#include "tokenizer/added_tokens.h"

#include <cstring>

namespace ds::tok {

void TokenMatcher::add(std::string_view s, int32_t id) {
  if (s.empty()) return;
  int32_t node = 0;
  for (char ch : s) {
    const uint8_t c = static_cast<uint8_t>(ch);
    auto it = nodes_[node].next.find(c);
    if (it == nodes_[node].next.end()) {
      nodes_.emplace_back();
      const int32_t nn = static_cast<int32_t>(nodes_.size() - 1);
      nodes_[node].next.emplace(c, nn);
      node = nn;
    } else {
      node = it->second;
    }
  }
  if (nodes_[node].id < 0) nodes_[node].id = id;
  first_byte_[static_cast<uint8_t>(s[0])] = true;
}

bool TokenMatcher::find(std::string_view text, size_t from, size_t& begin, size_t& len, int32_t& id) const {
  if (empty()) return false;
  for (size_t i = from; i < text.size(); ++i) {
    if (!first_byte_[static_cast<uint8_t>(text[i])]) continue;
    int32_t node = 0, best_id = -1;
    size_t best_len = 0;
    for (size_t j = i; j < text.size(); ++j) {
      const auto& nx = nodes_[node].next;
      auto it = nx.find(static_cast<uint8_t>(text[j]));
      if (it == nx.end()) break;
      node = it->second;
      if (nodes_[node].id >= 0) {
        best_id = nodes_[node].id;
        best_len = j - i + 1;
      }
    }
    if (best_id >= 0) {
      begin = i;
      len = best_len;
      id = best_id;
      return true;
    }
  }
  return false;
}

void AddedVocabulary::add(AddedToken t, std::string normalized_match) {
  if (by_id_.count(t.id)) return;
  by_id_[t.id] = tokens_.size();
  by_content_.emplace(t.content, t.id);
  if (t.normalized) normalized_.add(normalized_match.empty() ? t.content : normalized_match, t.id);
  else raw_.add(t.content, t.id);
  tokens_.push_back(std::move(t));
}

const AddedToken* AddedVocabulary::find_id(int32_t id) const {
  auto it = by_id_.find(id);
  return it == by_id_.end() ? nullptr : &tokens_[it->second];
}

int32_t AddedVocabulary::find_content(std::string_view content) const {
  auto it = by_content_.find(std::string(content));
  return it == by_content_.end() ? -1 : it->second;
}

namespace {
void split_with(const TokenMatcher& m, std::string_view text, size_t base, size_t len, std::vector<Segment>& out) {
  size_t pos = 0, b, l;
  int32_t id;
  const std::string_view sub = text.substr(base, len);
  while (m.find(sub, pos, b, l, id)) {
    if (b > pos) out.push_back({-1, base + pos, b - pos});
    out.push_back({id, base + b, l});
    pos = b + l;
  }
  if (pos < len) out.push_back({-1, base + pos, len - pos});
}
}  // namespace

void AddedVocabulary::split_raw(std::string_view text, std::vector<Segment>& out) const {
  split_with(raw_, text, 0, text.size(), out);
}

void AddedVocabulary::split_normalized(std::string_view text, std::vector<Segment>& out) const {
  split_with(normalized_, text, 0, text.size(), out);
}

void AddedVocabulary::split(std::string_view text, std::vector<Segment>& out) const {
  std::vector<Segment> first;
  split_with(raw_, text, 0, text.size(), first);
  for (const Segment& s : first) {
    if (s.id >= 0) out.push_back(s);
    else split_with(normalized_, text, s.begin, s.len, out);
  }
}

}  // namespace ds::tok
