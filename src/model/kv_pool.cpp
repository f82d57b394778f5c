// SPDX-License-Identifier: MIT
#include "model/kv_pool.h"

#include <algorithm>
#include <cstring>

#include "base/error.h"
#include "base/kv_rows.h"

namespace ds::model {

KvPool::KvPool(ops::Backend& be, int64_t n_blocks, int64_t block_size, int64_t n_layers, int64_t width, DType dtype)
    : be_(be), n_blocks_(n_blocks), block_size_(block_size), n_layers_(n_layers), width_(width), dtype_(dtype),
      row_bytes_(kv_row_bytes(dtype, width)) {
  DS_CHECK(n_blocks >= 1 && n_blocks < (int64_t(1) << 31), "KV cache: block count ", n_blocks, " out of range");
  DS_CHECK(block_size >= 1 && block_size <= 4096, "KV cache: block size ", block_size, " must be in [1, 4096]");
  DS_CHECK(n_layers >= 1 && width >= 1, "KV cache: bad geometry");
  buf_ = be_.alloc(size_t(n_blocks) * size_t(block_bytes()));
  meta_.resize(size_t(n_blocks));
  tokens_.resize(size_t(n_blocks * block_size));
  free_.reserve(size_t(n_blocks));
  for (int64_t b = n_blocks - 1; b >= 0; --b) free_.push_back(int32_t(b));  // hand out low ids first
}

int32_t KvPool::allocate() {
  int32_t b = -1;
  if (!free_.empty()) {
    b = free_.back();
    free_.pop_back();
  } else if (!lru_.empty()) {
    b = lru_.front();
    lru_.pop_front();
    unpublish(b);
    ++evictions_;
  } else {
    return -1;
  }
  meta_[size_t(b)].refs = 1;
  return b;
}

void KvPool::retain(int32_t b) {
  Meta& m = meta_[size_t(b)];
  if (m.refs == 0) {
    DS_ASSERT(m.published);  // only cached (published) blocks can be revived; free ones are allocated
    lru_.erase(m.lru);
  }
  ++m.refs;
}

void KvPool::release(int32_t b) {
  Meta& m = meta_[size_t(b)];
  DS_ASSERT(m.refs > 0);
  if (--m.refs > 0) return;
  if (m.published) {
    m.lru = lru_.insert(lru_.end(), b);
  } else {
    ++m.gen;  // its rows are about to be overwritten by whoever allocates it next
    free_.push_back(b);
  }
}

void KvPool::copy_block(int32_t dst, int32_t src) {
  // Rows are whole 4-byte words in every format: the copy op moves them as floats, bits unchanged.
  const int64_t words = row_bytes_ / 4;
  ops::CopyParams p;
  p.src = reinterpret_cast<const float*>(base() + src * block_bytes()); p.lds = words;
  p.dst = reinterpret_cast<float*>(base() + dst * block_bytes()); p.ldd = words;
  p.M = n_layers_ * block_size_; p.n = words;
  be_.copy(p);
  if (journaling_) journal_.ops.push_back({dst, src, 0});
}

void KvPool::write_block(int32_t b, const void* bytes) {
  DS_CHECK(b >= 0 && b < n_blocks_, "KV pool: block ", b, " out of range [0, ", n_blocks_, ")");
  be_.upload(base() + b * block_bytes(), bytes, size_t(block_bytes()));
  if (!journaling_) return;
  journal_.ops.push_back({b, -1, uint64_t(journal_.bytes.size())});
  const uint8_t* p = static_cast<const uint8_t*>(bytes);
  journal_.bytes.insert(journal_.bytes.end(), p, p + block_bytes());
}

void KvPool::replay(const Journal& j) {
  for (const JournalOp& op : j.ops) {
    DS_CHECK(op.dst >= 0 && op.dst < n_blocks_ && op.src < n_blocks_, "KV pool journal: block ", op.dst, " / ", op.src,
             " out of range [0, ", n_blocks_, ")");
    if (op.src >= 0) {
      copy_block(op.dst, op.src);
    } else {
      DS_CHECK(op.offset + uint64_t(block_bytes()) <= j.bytes.size(), "KV pool journal: block bytes out of range");
      be_.upload(base() + op.dst * block_bytes(), j.bytes.data() + op.offset, size_t(block_bytes()));
    }
  }
}

uint64_t KvPool::key(int32_t parent, const int32_t* tokens) const {
  // splitmix64-style mixing of (parent id, parent generation, tokens...).
  auto mix = [](uint64_t h, uint64_t v) {
    h ^= v + 0x9e3779b97f4a7c15ull + (h << 6) + (h >> 2);
    h ^= h >> 31; h *= 0xbf58476d1ce4e5b9ull; h ^= h >> 27;
    return h;
  };
  uint64_t h = mix(0x51ed270b27e2f1a3ull, uint64_t(uint32_t(parent)));
  h = mix(h, parent >= 0 ? meta_[size_t(parent)].gen : 0);
  for (int64_t i = 0; i < block_size_; ++i) h = mix(h, uint64_t(uint32_t(tokens[i])));
  return h;
}

bool KvPool::same_key(int32_t b, int32_t parent, const int32_t* tokens) const {
  const Meta& m = meta_[size_t(b)];
  const uint32_t pgen = parent >= 0 ? meta_[size_t(parent)].gen : 0;
  return m.published && m.parent == parent && m.parent_gen == pgen &&
         std::memcmp(&tokens_[size_t(b * block_size_)], tokens, size_t(block_size_) * sizeof(int32_t)) == 0;
}

int32_t KvPool::lookup(int32_t parent, const int32_t* tokens) {
  const auto it = index_.find(key(parent, tokens));
  if (it == index_.end() || !same_key(it->second, parent, tokens)) return -1;
  retain(it->second);
  ++hits_;
  return it->second;
}

bool KvPool::publish(int32_t b, int32_t parent, const int32_t* tokens) {
  Meta& m = meta_[size_t(b)];
  DS_ASSERT(m.refs > 0 && !m.published);
  const uint64_t h = key(parent, tokens);
  if (index_.count(h)) return false;  // the same content (or a colliding key) is already published
  m.published = true;
  m.parent = parent;
  m.parent_gen = parent >= 0 ? meta_[size_t(parent)].gen : 0;
  m.hash = h;
  std::copy(tokens, tokens + block_size_, tokens_.begin() + b * block_size_);
  index_.emplace(h, b);
  return true;
}

void KvPool::unpublish(int32_t b) {
  Meta& m = meta_[size_t(b)];
  if (!m.published) return;
  index_.erase(m.hash);
  m.published = false;
  ++m.gen;  // children keyed on this block's old content can no longer be reached
}

}  // namespace ds::model
