// SPDX-License-Identifier: MIT
// The KV cache of one sequence: per layer and token one row, MLA's post-RMSNorm latent c_kv (kv_lora_rank values)
// followed by the post-RoPE k_pe (qk_rope_head_dim values), or K then V of every kv head (grouped-query), in the
// pool's format (model/kv_pool.h), in backend memory.
// Paged: the rows live in blocks of a KvPool (possibly shared with other sequences); the block table maps position
// t to row t % block_size of block blocks()[t / block_size]. Blocks shared with other sequences or published in the
// pool's prefix cache are read-only: prepare_write copies them before a write (copy on write).
#pragma once
#include <cstdint>
#include <memory>
#include <vector>

#include "model/kv_pool.h"

namespace ds::model {

class KvCache {
 public:
  // capacity: the most tokens this sequence may hold (its context size).
  KvCache(std::shared_ptr<KvPool> pool, int64_t capacity);
  // A view of blocks another process's pool allocated, mirrored in this pool (model/step.cpp): owns no reference
  // (its destructor releases nothing); only a forward pass's rows are read and written through it.
  static std::unique_ptr<KvCache> mirror(std::shared_ptr<KvPool> pool, int64_t capacity, std::vector<int32_t> blocks,
                                         int64_t length, int64_t mtp_length);
  ~KvCache();
  KvCache(const KvCache&) = delete;
  KvCache& operator=(const KvCache&) = delete;

  int64_t capacity() const { return capacity_; }
  int64_t width() const { return pool_->width(); }
  int64_t n_layers() const { return pool_->n_layers(); }
  int64_t block_size() const { return pool_->block_size(); }
  KvPool& pool() { return *pool_; }
  const std::vector<int32_t>& blocks() const { return blocks_; }  // [ceil(rows / block_size)] pool block ids

  // Row t of layer l (pool().row_bytes() bytes in backend memory). Its block must be allocated.
  uint8_t* row(int64_t l, int64_t t) { return pool_->row(blocks_[size_t(t / block_size())], l, t % block_size()); }

  // Makes positions [pos, pos + n) writable in the main layers (mtp = false) or the MTP layers (mtp = true):
  // allocates missing blocks and copies blocks that other sequences share (and, for the main layers, blocks
  // published in the prefix cache, whose main rows are what their key promises). Throws ds::Error when the pool
  // has no block left; blocks allocated before the failure stay with this sequence.
  void prepare_write(int64_t pos, int64_t n, bool mtp);
  // Allocates the blocks covering positions [0, end) that are missing; false (nothing changed) when the pool does
  // not have them all.
  bool reserve(int64_t end);
  // Blocks reserve(end) would allocate.
  int64_t missing_blocks(int64_t end) const;

  // Starts an empty sequence on shared prefix blocks (already retained for this cache, which takes the reference):
  // length = blocks.size() * block_size, mtp_length = 0.
  void adopt(const std::vector<int32_t>& blocks);
  // Drops positions >= n (releasing whole blocks past them); length and mtp_length are capped at n.
  void truncate(int64_t n);
  void clear() { truncate(0); }

  int64_t length = 0;      // tokens cached in the main layers
  int64_t mtp_length = 0;  // tokens cached in the MTP layers

 private:
  std::shared_ptr<KvPool> pool_;
  int64_t capacity_;
  std::vector<int32_t> blocks_;
  bool owns_ = true;  // false: a mirror
};

}  // namespace ds::model
