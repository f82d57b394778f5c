// SPDX-License-Identifier: MIT
#include "backend/cpu/weight_arena.h"

#include <omp.h>

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
  auto it = copies_.find(src);
  if (it != copies_.end() && it->second.first >= bytes) return it->second.second;
  uint8_t* dst = reserve(bytes);
  // Large tensors are copied by all threads (each thread's first touch also places its huge pages).
  const int nt = bytes < (size_t(8) << 20) ? 1 : nt_;
  const size_t part = (bytes / size_t(nt) + 63) / 64 * 64;
#pragma omp parallel for num_threads(nt) schedule(static) if (nt > 1)
  for (int i = 0; i < nt; ++i) {
    const size_t b = std::min(bytes, size_t(i) * part), e = std::min(bytes, b + part);
    if (e > b) std::memcpy(dst + b, static_cast<const uint8_t*>(src) + b, e - b);
  }
  copies_[src] = {bytes, dst};
  bytes_ += bytes;
  return dst;
}

WeightView WeightArena::place(const WeightView& w) {
  if (!w.data) return w;
  WeightView v = w;
  v.data = copy_range(w.data, size_t(w.numel()) * size_t(dtype_size(w.dtype)));
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
