// SPDX-License-Identifier: MIT
#include "model/kv_cache.h"

#include <algorithm>

#include "base/error.h"

namespace ds::model {

KvCache::KvCache(std::shared_ptr<KvPool> pool, int64_t capacity) : pool_(std::move(pool)), capacity_(capacity) {
  DS_CHECK(pool_ && capacity > 0, "KV cache: needs a pool and a positive capacity, got ", capacity);
  blocks_.reserve(size_t((capacity + block_size() - 1) / block_size()));
}

KvCache::~KvCache() {
  if (owns_) clear();
}

std::unique_ptr<KvCache> KvCache::mirror(std::shared_ptr<KvPool> pool, int64_t capacity, std::vector<int32_t> blocks,
                                         int64_t length, int64_t mtp_length) {
  auto c = std::make_unique<KvCache>(std::move(pool), capacity);
  c->owns_ = false;
  c->blocks_ = std::move(blocks);
  c->length = length;
  c->mtp_length = mtp_length;
  return c;
}

int64_t KvCache::missing_blocks(int64_t end) const {
  const int64_t need = (std::min(end, capacity_) + block_size() - 1) / block_size();
  return std::max<int64_t>(0, need - int64_t(blocks_.size()));
}

bool KvCache::reserve(int64_t end) {
  const int64_t miss = missing_blocks(end);
  if (miss > pool_->available()) return false;
  for (int64_t i = 0; i < miss; ++i) blocks_.push_back(pool_->allocate());
  return true;
}

void KvCache::prepare_write(int64_t pos, int64_t n, bool mtp) {
  DS_CHECK(pos >= 0 && n >= 0 && pos + n <= capacity_, "KV cache: positions [", pos, ", ", pos + n,
           ") exceed the context size ", capacity_);
  if (n == 0) return;
  const int64_t bs = block_size(), first = pos / bs, last = (pos + n - 1) / bs;
  while (int64_t(blocks_.size()) <= last) {
    const int32_t b = pool_->allocate();
    DS_CHECK(b >= 0, "the KV cache pool is full (", pool_->n_blocks(), " blocks of ", bs,
             " tokens; see --kv-cache-tokens)");
    blocks_.push_back(b);
  }
  for (int64_t i = first; i <= last; ++i) {
    const int32_t b = blocks_[size_t(i)];
    if (pool_->refs(b) == 1 && (mtp || !pool_->published(b))) continue;
    const int32_t c = pool_->allocate();
    DS_CHECK(c >= 0, "the KV cache pool is full (no block left to copy a shared block into)");
    pool_->copy_block(c, b);
    pool_->release(b);
    blocks_[size_t(i)] = c;
  }
}

void KvCache::adopt(const std::vector<int32_t>& blocks) {
  DS_CHECK(blocks_.empty() && length == 0 && mtp_length == 0, "KV cache: adopt needs an empty cache");
  DS_CHECK(int64_t(blocks.size()) * block_size() <= capacity_, "KV cache: adopted prefix exceeds the capacity");
  blocks_ = blocks;
  length = int64_t(blocks.size()) * block_size();
}

void KvCache::truncate(int64_t n) {
  n = std::max<int64_t>(0, n);
  const size_t keep = size_t((n + block_size() - 1) / block_size());
  while (blocks_.size() > keep) {
    pool_->release(blocks_.back());
    blocks_.pop_back();
  }
  length = std::min(length, n);
  mtp_length = std::min(mtp_length, n);
}

}  // namespace ds::model
