// SPDX-License-Identifier: MIT
// A pool of fixed-size KV blocks shared by sequences (paged attention: MLA latent rows, or K and V rows).
// Block b holds `block_size` consecutive token positions of every cache layer (main layers and MTP), laid out
// [n_blocks][n_layers][block_size] rows in backend memory, so one block is one contiguous range (a copy on write is
// one copy) and layer l of every block sits at the same offset from the block's start. A row is `width` values in the
// pool's format (base/kv_rows.h, `--kv-dtype`): f32 (4 width bytes), bf16 (2 width, padded to 4) or fp8 e4m3 with one
// fp32 scale per 128 values (width codes padded to 4, then the scales: 596 bytes for a 576-wide MLA row). Offsets and
// strides are in bytes; ops read and write rows through ops::KvRows (layer()) with kv_write / kv_read / attention.
//
// Blocks are reference-counted. A full block of prompt rows can be *published* under its content: the block of its
// parent (the previous block of the same sequence, -1 for the first) plus its token ids. A later prompt with the
// same tokens finds the chain block by block (lookup) and shares the blocks read-only. Keys name the parent by block
// id and that block's generation (bumped whenever a block loses its content), so a chain is matched exactly: a hash
// collision can cost a miss, never a wrong hit, and a child whose parent was evicted can no longer be reached.
// Published blocks nobody references stay cached until allocation runs out of free blocks and evicts the least
// recently released one (LRU).
// Not thread-safe: one owner thread (the scheduler's engine thread, or a Session).
#pragma once
#include <cstdint>
#include <list>
#include <memory>
#include <unordered_map>
#include <utility>
#include <vector>

#include "ops/backend.h"

namespace ds::model {

class KvPool {
 public:
  KvPool(ops::Backend& be, int64_t n_blocks, int64_t block_size, int64_t n_layers, int64_t width,
         DType dtype = DType::F32);
  KvPool(const KvPool&) = delete;
  KvPool& operator=(const KvPool&) = delete;

  int64_t n_blocks() const { return n_blocks_; }
  int64_t block_size() const { return block_size_; }
  int64_t n_layers() const { return n_layers_; }
  int64_t width() const { return width_; }
  DType dtype() const { return dtype_; }
  size_t bytes() const { return buf_->size(); }
  ops::Backend& backend() { return be_; }

  // Bytes of one row; of one token's rows in every layer; from block b's start to block b+1's start. Layer l of a
  // block starts layer_offset(l) bytes into it.
  int64_t row_bytes() const { return row_bytes_; }
  int64_t bytes_per_token() const { return n_layers_ * row_bytes_; }
  int64_t block_bytes() const { return n_layers_ * block_size_ * row_bytes_; }
  int64_t layer_offset(int64_t l) const { return l * block_size_ * row_bytes_; }
  uint8_t* base() { return static_cast<uint8_t*>(buf_->data()); }
  // Row i (0 <= i < block_size) of layer l in block b.
  uint8_t* row(int32_t b, int64_t l, int64_t i) {
    return base() + b * block_bytes() + layer_offset(l) + i * row_bytes_;
  }
  // Layer l's rows through `table` (a sequence's block ids, in backend memory), as the KV ops take them.
  ops::KvRows layer(int64_t l, const int32_t* table) {
    return {base() + layer_offset(l), dtype_, width_, row_bytes_, table, block_size_, block_bytes()};
  }

  // A block with reference count 1: a free one, else the least recently released cached one (its content is
  // forgotten). -1 when every block is referenced.
  int32_t allocate();
  void retain(int32_t b);
  void release(int32_t b);  // at zero: published blocks stay cached (LRU), others become free
  int refs(int32_t b) const { return meta_[size_t(b)].refs; }
  bool published(int32_t b) const { return meta_[size_t(b)].published; }
  // dst := src for every layer (copy on write); both must be allocated.
  void copy_block(int32_t dst, int32_t src);
  // Block b's rows in every layer := `bytes` [block_bytes()] from host memory (a swapped-out sequence returning).
  void write_block(int32_t b, const void* bytes);

  // The changes to block contents made outside a forward pass (copy_block, write_block), in order, while journaling
  // is on: what a pool mirrored in another process (model/step.cpp) must replay to hold the same rows.
  struct JournalOp {
    int32_t dst = -1, src = -1;  // copy_block(dst, src); src = -1: write_block(dst, bytes[offset, +block_bytes()))
    uint64_t offset = 0;
  };
  struct Journal {
    std::vector<JournalOp> ops;
    std::vector<uint8_t> bytes;
  };
  void set_journaling(bool on) { journaling_ = on; }
  // Returns the changes since the last call and starts a new journal.
  Journal take_journal() { return std::exchange(journal_, Journal{}); }
  // Replays changes another pool recorded (this pool has the same geometry).
  void replay(const Journal& j);

  // The published block holding `tokens` [block_size] after `parent` (-1: the first block), retained; -1 if none.
  int32_t lookup(int32_t parent, const int32_t* tokens);
  // Publishes full block b (referenced, not yet published) as holding `tokens` [block_size] after `parent`.
  // Returns false (and leaves b private) when an identical block is already published.
  bool publish(int32_t b, int32_t parent, const int32_t* tokens);

  int64_t n_free() const { return int64_t(free_.size()); }      // never published or evicted: empty
  int64_t n_cached() const { return int64_t(lru_.size()); }     // published, unreferenced, reusable
  int64_t n_used() const { return n_blocks_ - n_free() - n_cached(); }  // referenced by some sequence
  int64_t available() const { return n_free() + n_cached(); }   // what allocate() can still hand out
  uint64_t hits() const { return hits_; }                       // blocks found by lookup
  uint64_t evictions() const { return evictions_; }

 private:
  struct Meta {
    int refs = 0;
    bool published = false;
    uint32_t gen = 0;              // bumped when the block's content stops being what a key says
    int32_t parent = -1;           // key of a published block: parent id + generation + tokens
    uint32_t parent_gen = 0;
    uint64_t hash = 0;
    std::list<int32_t>::iterator lru;
  };
  uint64_t key(int32_t parent, const int32_t* tokens) const;
  bool same_key(int32_t b, int32_t parent, const int32_t* tokens) const;
  void unpublish(int32_t b);

  ops::Backend& be_;
  int64_t n_blocks_, block_size_, n_layers_, width_;
  DType dtype_;
  int64_t row_bytes_;
  std::unique_ptr<ops::Buffer> buf_;
  std::vector<Meta> meta_;
  std::vector<int32_t> tokens_;    // [n_blocks, block_size] token ids of published blocks
  std::vector<int32_t> free_;      // stack of free block ids
  std::list<int32_t> lru_;         // cached blocks, least recently released first
  std::unordered_map<uint64_t, int32_t> index_;  // key hash -> published block
  uint64_t hits_ = 0, evictions_ = 0;
  bool journaling_ = false;
  Journal journal_;
};

}  // namespace ds::model
