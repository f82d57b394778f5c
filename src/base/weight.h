// SPDX-License-Identifier: MIT
// WeightView: a weight matrix (or vector) as it sits in the checkpoint, in its own format.
// Nothing here owns memory; views point into mmapped files or backend-owned buffers. The format (`dtype`) is
// described by base/quant.h: plain element types (F32, F16, BF16, F8_E4M3) or ggml block formats (Q8_0, Q4_K, ...),
// whose rows are whole blocks (cols a multiple of the block) at a stride of row_bytes(dtype, cols).
#pragma once
#include <cstdint>

#include "base/dtype.h"

namespace ds {

// How the elements of a [rows, cols] weight are laid out in memory.
//  RowMajor: row r at r * row_bytes(dtype, cols) bytes (as checkpoints store them; for plain types r * cols elements).
//  Rows16: the CPU backend's matmul layout for BF16 and F8_E4M3 (cpu/weight_arena.h): blocks of 16 rows, each a run
//    of 64-byte lines; a line holds one group of G = 4 / element-size consecutive columns for all 16 rows (BF16: the
//    pair (c, c+1) of row i in bytes 4i..4i+3; F8_E4M3: the four columns of a quad placed so that table lookup and
//    byte unpacking give the pairs (c, c+1) and (c+2, c+3) as vectors, see rows16_offset). Rows past `rows` and
//    columns past `cols` are zero. A matmul streams one block as one contiguous run and multiplies 16 rows at once.
//    An F8_E4M3 block ends with a bitmap of its lines (bit l % 64 of little-endian word l / 64, in whole 64-byte
//    lines): a set bit says line l holds only ordinary codes (fp8_line_is_ordinary), which the kernels convert by
//    bit maps without testing the line; a clear bit sends the line through the exact byte tables (so all zeros,
//    as a writer that does not fill the bitmap leaves it, is slower but correct).
enum class WeightLayout : uint8_t { RowMajor = 0, Rows16 = 1 };

// Rows16: 64-byte lines of one 16-row block, its bytes (lines, then for F8_E4M3 the line bitmap), and the byte
// offset of element (r, c) inside the whole weight.
int64_t rows16_lines(DType dt, int64_t cols);
int64_t rows16_block_bytes(DType dt, int64_t cols);
int64_t rows16_offset(DType dt, int64_t cols, int64_t r, int64_t c);
// Whether a 64-byte line of e4m3 codes holds only codes with exponent field >= 1 that convert by bit selection:
// none of zero, subnormals, the lowest binade below its last code, NaN (the Rows16 bitmap's bit).
bool fp8_line_is_ordinary(const uint8_t* line);

struct WeightView {
  const void* data = nullptr;  // [rows, cols] in `dtype`, laid out as `layout` says
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
  WeightLayout layout = WeightLayout::RowMajor;

  bool quantized() const { return scale != nullptr; }
  int64_t numel() const { return rows * cols; }
  // Bytes of one row (RowMajor).
  int64_t row_bytes() const;
  // Bytes the elements occupy in this layout (Rows16 pads to whole blocks and lines).
  int64_t bytes() const;
  // Rows [r, r+n) of this matrix, still indexing the same scale grid (Rows16: r a multiple of 16).
  WeightView row_slice(int64_t r, int64_t n) const;
  // Exact value of element (r, c) in fp32 (slow; for references and tests).
  float at(int64_t r, int64_t c) const;
  // Row r (all cols) dequantised exactly to fp32, block scales applied.
  void row_f32(int64_t r, float* out) const;
};

}  // namespace ds
