// SPDX-License-Identifier: MIT
#include "backend/cpu/weight_arena.h"

#include "backend/cpu/thread_pool.h"


#include <algorithm>
#include <cstring>

namespace ds::cpu {

namespace {
constexpr size_t kChunk = size_t(256) << 20;  // the arena grows in chunks of at least this size
}

uint8_t* WeightArena::reserve(size_t bytes) {
  bytes = (bytes + 63) / 64 * 64;
  if (chunks_.empty() || chunks_.back().used + bytes > chunks_.back().mem.size())
    chunks_.push_back({HugePageBuffer(std::max(kChunk, bytes), "weights (--load mmap maps the checkpoint instead)"), 0});
  Chunk& c = chunks_.back();
  uint8_t* out = c.mem.data() + c.used;
  c.used += bytes;
  return out;
}

const void* WeightArena::copy_range(const void* src, size_t bytes) {
  auto it = copies_.find({src, WeightLayout::RowMajor});
  if (it != copies_.end() && it->second.first >= bytes) return it->second.second;
  uint8_t* dst = reserve(bytes);
  // Large tensors are copied by all threads (each thread's first touch also places its huge pages).
  const int nt = bytes < (size_t(8) << 20) ? 1 : nt_;
  const size_t part = (bytes / size_t(nt) + 63) / 64 * 64;
  parallel(nt, [&](int i) {
    const size_t b = std::min(bytes, size_t(i) * part), e = std::min(bytes, b + part);
    if (e > b) std::memcpy(dst + b, static_cast<const uint8_t*>(src) + b, e - b);
  });
  copies_[{src, WeightLayout::RowMajor}] = {bytes, dst};
  bytes_ += bytes;
  return dst;
}

// Rows16 (base/weight.h), block by block on all threads: each 16-row block is written line by line from its rows.
const void* WeightArena::repack_rows16(const WeightView& w) {
  auto it = copies_.find({w.data, WeightLayout::Rows16});
  if (it != copies_.end()) return it->second.second;
  WeightView out = w;
  out.layout = WeightLayout::Rows16;
  const size_t bytes = size_t(out.bytes());
  uint8_t* dst = reserve(bytes);
  const int64_t R = w.rows, C = w.cols, blocks = (R + 15) / 16, bb = rows16_block_bytes(w.dtype, C);
  const int nt = bytes < (size_t(8) << 20) ? 1 : nt_;
  const bool bf16 = w.dtype == DType::BF16;
  parallel_for(blocks, nt, [&](int64_t b) {
    uint8_t* blk = dst + b * bb;
    std::memset(blk, 0, size_t(bb));
    for (int64_t i = 0; i < 16 && 16 * b + i < R; ++i) {
      const int64_t r = 16 * b + i;
      if (bf16) {
        const uint16_t* row = static_cast<const uint16_t*>(w.data) + r * C;
        for (int64_t c = 0; c < C; ++c) std::memcpy(blk + (c / 2) * 64 + 4 * i + 2 * (c % 2), row + c, 2);
      } else {
        const uint8_t* row = static_cast<const uint8_t*>(w.data) + r * C;
        for (int64_t c = 0; c < C; ++c) blk[rows16_offset(w.dtype, C, i, c)] = row[c];
      }
    }
    if (!bf16) {  // the line bitmap (base/weight.h)
      const int64_t lines = rows16_lines(w.dtype, C);
      uint8_t* bits = blk + lines * 64;
      for (int64_t l = 0; l < lines; ++l)
        if (fp8_line_is_ordinary(blk + l * 64)) bits[l / 8] |= uint8_t(1u << (l % 8));
    }
  });
  copies_[{w.data, WeightLayout::Rows16}] = {bytes, dst};
  bytes_ += bytes;
  return dst;
}

WeightView WeightArena::place(const WeightView& w, bool matmul_only) {
  if (!w.data) return w;
  WeightView v = w;
  // Rows16 for BF16 / F8_E4M3 matrices used only by matmul, when FP8 block scales are whole 16-row blocks and
  // whole column groups (every DeepSeek checkpoint: 128 x 128).
  const bool rows16 = matmul_only && w.layout == WeightLayout::RowMajor && w.rows > 1 &&
                      (w.dtype == DType::BF16 || w.dtype == DType::F8_E4M3) &&
                      (!w.scale || (w.block_rows % 16 == 0 && w.block_cols % 4 == 0 && w.row0 % 16 == 0));
  if (rows16) {
    v.data = repack_rows16(w);
    v.layout = WeightLayout::Rows16;
  } else {
    v.data = copy_range(w.data, size_t(w.bytes()));
  }
  if (w.scale) {
    // The whole scale grid up to the last block row this view touches (row0 may start mid-grid for slices).
    const int64_t grid_rows = (w.row0 + w.rows + w.block_rows - 1) / w.block_rows;
    v.scale = static_cast<const float*>(copy_range(w.scale, size_t(grid_rows * w.scale_cols) * sizeof(float)));
  }
  return v;
}

uint64_t WeightArena::huge_page_bytes() const {
  uint64_t total = 0;
  for (const Chunk& c : chunks_) total += c.mem.huge_bytes();
  return std::min(total, bytes_);  // neighbouring chunks may share one kernel mapping (counted once per chunk)
}

}  // namespace ds::cpu
