// SPDX-License-Identifier: MIT
// BPE merge loop (priority queue over a linked list of symbols) and vocabulary loading (see bpe.h).
#include "tokenizer/bpe.h"

#include <atomic>
#include <queue>

#include <nlohmann/json.hpp>

#include "base/error.h"
#include "tokenizer/unicode.h"

namespace ds::tok {

namespace {
std::atomic<uint64_t> g_instances{1};

uint64_t mix(uint64_t k) {
  k ^= k >> 33;
  k *= 0xff51afd7ed558ccdULL;
  k ^= k >> 33;
  return k;
}

// Per-thread cache of pre-token -> ids. Bounded: cleared when full (pre-token frequencies are Zipfian,
// so the common pieces come straight back).
struct PieceCache {
  uint64_t owner = 0;
  std::unordered_map<std::string, std::vector<int32_t>> map;
};
constexpr size_t kCacheEntries = 1 << 16;
constexpr size_t kCacheMaxPiece = 64;  // long pieces are rare and would bloat the cache
}  // namespace

void BpeModel::MergeTable::build(const std::vector<std::pair<uint64_t, Merge>>& items) {
  size_t cap = 16;
  while (cap < items.size() * 2) cap <<= 1;
  keys.assign(cap, ~0ULL);
  vals.assign(cap, Merge{-1, -1});
  mask = cap - 1;
  for (const auto& [k, v] : items) {
    size_t h = mix(k) & mask;
    while (keys[h] != ~0ULL && keys[h] != k) h = (h + 1) & mask;
    if (keys[h] == k) continue;  // duplicate merge line: the first (lowest rank) wins
    keys[h] = k;
    vals[h] = v;
  }
}

const BpeModel::Merge* BpeModel::MergeTable::find(uint64_t key) const {
  size_t h = mix(key) & mask;
  while (true) {
    if (keys[h] == key) return &vals[h];
    if (keys[h] == ~0ULL) return nullptr;
    h = (h + 1) & mask;
  }
}

BpeModel::BpeModel(const nlohmann::json& model) {
  DS_CHECK(model.value("type", "BPE") == "BPE", "tokenizer.json: model type '", model.value("type", ""),
           "' is not supported (only BPE)");
  DS_CHECK(model.value("dropout", nlohmann::json()).is_null(), "tokenizer.json: BPE dropout is not supported");
  DS_CHECK(!model.value("byte_fallback", false), "tokenizer.json: BPE byte_fallback is not supported");
  const auto& im = model.value("ignore_merges", nlohmann::json(false));
  DS_CHECK(im.is_boolean(), "tokenizer.json: model.ignore_merges must be a boolean");
  ignore_merges_ = im.get<bool>();
  instance_ = g_instances.fetch_add(1);
  const auto& vocab = model.at("vocab");
  DS_CHECK(vocab.is_object(), "tokenizer.json: model.vocab must be an object");
  int64_t max_id = -1;
  for (auto it = vocab.begin(); it != vocab.end(); ++it) max_id = std::max<int64_t>(max_id, it.value().get<int64_t>());
  DS_CHECK(max_id < (1 << 24), "tokenizer.json: vocabulary id ", max_id, " is out of range");
  id_bytes_.resize(max_id + 1);
  id_text_.resize(max_id + 1);
  id_present_.assign(max_id + 1, false);
  id_bytelevel_.assign(max_id + 1, false);
  bytes_to_id_.reserve(vocab.size() * 2);
  for (auto it = vocab.begin(); it != vocab.end(); ++it) {
    const int64_t id = it.value().get<int64_t>();
    DS_CHECK(id >= 0, "tokenizer.json: negative vocabulary id for '", it.key(), "'");
    std::string bytes;
    const bool bytelevel = bytelevel_decode(it.key(), bytes);
    if (!bytelevel) bytes = it.key();
    id_bytelevel_[id] = bytelevel;
    id_text_[id] = it.key();
    id_bytes_[id] = bytes;
    id_present_[id] = true;
    bytes_to_id_.emplace(std::move(bytes), static_cast<int32_t>(id));
  }
  const auto& map = byte_to_codepoint();
  for (int b = 0; b < 256; ++b) {
    std::string s;
    append_utf8(s, map[b]);
    auto it = vocab.find(s);
    byte_id_[b] = it == vocab.end() ? -1 : it.value().get<int32_t>();
  }
  std::vector<std::pair<uint64_t, Merge>> items;
  const auto& merges = model.at("merges");
  items.reserve(merges.size());
  int32_t rank = 0;
  for (const auto& m : merges) {
    std::string a, b;
    if (m.is_string()) {
      const std::string& line = m.get_ref<const std::string&>();
      const size_t sp = line.find(' ', 1);
      DS_CHECK(sp != std::string::npos, "tokenizer.json: malformed merge '", line, "'");
      a = line.substr(0, sp);
      b = line.substr(sp + 1);
    } else {
      DS_CHECK(m.is_array() && m.size() == 2, "tokenizer.json: malformed merge entry");
      a = m[0].get<std::string>();
      b = m[1].get<std::string>();
    }
    auto ia = vocab.find(a), ib = vocab.find(b), ic = vocab.find(a + b);
    DS_CHECK(ia != vocab.end() && ib != vocab.end() && ic != vocab.end(), "tokenizer.json: merge '", a, " ", b,
             "' refers to a token missing from the vocabulary");
    items.push_back({pair_key(ia.value().get<int32_t>(), ib.value().get<int32_t>()), Merge{rank++, ic.value().get<int32_t>()}});
  }
  merges_.build(items);
}

int32_t BpeModel::find_bytes(std::string_view bytes) const {
  auto it = bytes_to_id_.find(std::string(bytes));
  return it == bytes_to_id_.end() ? -1 : it->second;
}

void BpeModel::encode_piece(std::string_view bytes, std::vector<int32_t>& out) const {
  if (bytes.empty()) return;
  if (bytes.size() == 1) {
    const int32_t id = byte_id_[static_cast<uint8_t>(bytes[0])];
    if (id >= 0) out.push_back(id);
    return;
  }
  if (bytes.size() > kCacheMaxPiece) {
    merge_word(bytes, out);
    return;
  }
  thread_local PieceCache cache;
  if (cache.owner != instance_) {
    cache.map.clear();
    cache.owner = instance_;
  }
  thread_local std::string key;
  key.assign(bytes);
  auto it = cache.map.find(key);
  if (it != cache.map.end()) {
    out.insert(out.end(), it->second.begin(), it->second.end());
    return;
  }
  const size_t start = out.size();
  merge_word(bytes, out);
  if (cache.map.size() >= kCacheEntries) cache.map.clear();
  cache.map.emplace(key, std::vector<int32_t>(out.begin() + start, out.end()));
}

void BpeModel::merge_word(std::string_view bytes, std::vector<int32_t>& out) const {
  if (ignore_merges_) {  // HF: the whole (ByteLevel-mapped) pre-token looked up in the vocabulary first
    auto it = bytes_to_id_.find(std::string(bytes));
    if (it != bytes_to_id_.end() && id_bytelevel_[it->second]) {
      out.push_back(it->second);
      return;
    }
  }
  // Symbols form a doubly linked list; candidate merges sit in a min-heap ordered by (rank, position).
  // A popped candidate is applied only if it still describes the current neighbours (stale entries are
  // skipped), which gives HF's "lowest rank first, leftmost first" order in O(n log n).
  struct Sym {
    int32_t id;
    int32_t prev, next;
  };
  struct Cand {
    int32_t rank, pos, id;
    bool operator>(const Cand& o) const { return rank != o.rank ? rank > o.rank : pos > o.pos; }
  };
  const int32_t n = static_cast<int32_t>(bytes.size());
  std::vector<Sym> sym;
  sym.reserve(n);
  for (int32_t i = 0; i < n; ++i) {
    const int32_t id = byte_id_[static_cast<uint8_t>(bytes[i])];
    if (id < 0) continue;  // a byte with no token (not in a ByteLevel vocab): dropped, as HF does without unk
    const int32_t k = static_cast<int32_t>(sym.size());
    sym.push_back({id, k - 1, -1});
    if (k > 0) sym[k - 1].next = k;
  }
  std::vector<Cand> heap_storage;
  heap_storage.reserve(sym.size());
  std::priority_queue<Cand, std::vector<Cand>, std::greater<Cand>> heap(std::greater<Cand>(), std::move(heap_storage));
  const int32_t m = static_cast<int32_t>(sym.size());
  for (int32_t i = 0; i + 1 < m; ++i) {
    if (const Merge* mg = merges_.find(pair_key(sym[i].id, sym[i + 1].id))) heap.push({mg->rank, i, mg->id});
  }
  while (!heap.empty()) {
    const Cand c = heap.top();
    heap.pop();
    Sym& left = sym[c.pos];
    if (left.id < 0 || left.next < 0) continue;
    Sym& right = sym[left.next];
    const Merge* mg = merges_.find(pair_key(left.id, right.id));
    if (!mg || mg->rank != c.rank || mg->id != c.id) continue;  // stale
    left.id = c.id;
    right.id = -1;  // removed
    left.next = right.next;
    if (right.next >= 0) sym[right.next].prev = c.pos;
    if (left.prev >= 0) {
      if (const Merge* p = merges_.find(pair_key(sym[left.prev].id, left.id))) heap.push({p->rank, left.prev, p->id});
    }
    if (left.next >= 0) {
      if (const Merge* p = merges_.find(pair_key(left.id, sym[left.next].id))) heap.push({p->rank, c.pos, p->id});
    }
  }
  for (int32_t i = m > 0 ? 0 : -1; i >= 0; i = sym[i].next) out.push_back(sym[i].id);
}

}  // namespace ds::tok
