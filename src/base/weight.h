// SPDX-License-Identifier: MIT
// WeightView: a weight matrix (or vector) as it sits in the checkpoint, in its own dtype.
// Nothing here owns memory; views point into mmapped files or backend-owned buffers.
#pragma once
#include <cstdint>

#include "base/dtype.h"

namespace ds {

struct WeightView {
  const void* data = nullptr;  // [rows, cols] row-major in `dtype`, row stride = cols
  DType dtype = DType::F32;
  int64_t rows = 0;  // 1-D tensors: rows = 1, cols = length
  int64_t cols = 0;
  // FP8 block quantisation (DeepSeek `weight_scale_inv`): W[r,c] = q[r,c] * scale[(row0+r)/block_rows, c/block_cols].
  // row0 lets a row slice (one head of kv_b_proj) keep indexing the parent tensor's scale grid.
  const float* scale = nullptr;  // [ceil(parent_rows/block_rows), scale_cols] fp32; may be null
  int64_t scale_cols = 0;
  int64_t row0 = 0;
  int32_t block_rows = 128;
  int32_t block_cols = 128;

  bool quantized() const { return scale != nullptr; }
  int64_t numel() const { return rows * cols; }
  // Rows [r, r+n) of this matrix, still indexing the same scale grid.
  WeightView row_slice(int64_t r, int64_t n) const {
    WeightView v = *this;
    v.data = static_cast<const uint8_t*>(data) + r * cols * dtype_size(dtype);
    v.rows = n;
    v.row0 = row0 + r;
    return v;
  }
  // Exact value of element (r, c) in fp32 (slow; for references and tests).
  float at(int64_t r, int64_t c) const;
};

}  // namespace ds
