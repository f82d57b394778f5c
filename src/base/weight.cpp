// SPDX-License-Identifier: MIT
#include "base/weight.h"

#include <cstring>

#include "base/error.h"
#include "base/quant.h"

namespace ds {

int64_t rows16_lines(DType dt, int64_t cols) {
  const int64_t g = 4 / dtype_size(dt);  // columns per 4-byte group of one row
  return (cols + g - 1) / g;
}

int64_t rows16_block_bytes(DType dt, int64_t cols) {
  const int64_t lines = rows16_lines(dt, cols);
  // F8_E4M3: the lines, then their bitmap (one bit per line, 512 lines per 64-byte line of it).
  return lines * 64 + (dt == DType::F8_E4M3 ? (lines + 511) / 512 * 64 : 0);
}

bool fp8_line_is_ordinary(const uint8_t* line) {
  for (int i = 0; i < 64; ++i)
    if (((line[i] + 1) & 0x70) == 0) return false;  // zero, subnormal, e = 1 with m < 7, or NaN (0x7f, 0xff)
  return true;
}

int64_t rows16_offset(DType dt, int64_t cols, int64_t r, int64_t c) {
  const int64_t line = (r / 16) * rows16_block_bytes(dt, cols) + (c / (4 / dtype_size(dt))) * 64;
  const int64_t i = r % 16;
  if (dtype_size(dt) == 2) return line + 4 * i + 2 * (c % 2);
  // F8_E4M3 quad (c0..c3) of row i: the kernels look each byte up (hi and lo byte of its bf16 value) and unpack the
  // low 8 and the high 8 bytes of every 16-byte lane to words: unpacklo gives words 8 * lane + q for bytes 16 * lane + q
  // (q < 8), unpackhi for bytes 16 * lane + 8 + q. Word w of the first result is pair (c0, c1) of row w / 2, element
  // w % 2; of the second, pair (c2, c3).
  const int64_t pair = (c % 4) / 2, w = 2 * i + c % 2;  // pair 0 -> unpacklo, 1 -> unpackhi
  return line + 16 * (w / 8) + 8 * pair + w % 8;
}

int64_t WeightView::row_bytes() const { return ds::row_bytes(dtype, cols); }

int64_t WeightView::bytes() const {
  if (layout == WeightLayout::Rows16) return (rows + 15) / 16 * rows16_block_bytes(dtype, cols);
  return rows * row_bytes();
}

WeightView WeightView::row_slice(int64_t r, int64_t n) const {
  WeightView v = *this;
  if (layout == WeightLayout::Rows16) {
    DS_CHECK(r % 16 == 0, "row slice at ", r, " of a Rows16 weight: slices start at multiples of 16 rows");
    v.data = static_cast<const uint8_t*>(data) + (r / 16) * rows16_block_bytes(dtype, cols);
  } else {
    v.data = static_cast<const uint8_t*>(data) + r * row_bytes();
  }
  v.rows = n;
  v.row0 = row0 + r;
  return v;
}

float WeightView::at(int64_t r, int64_t c) const {
  const int64_t i = r * cols + c;
  float v = 0.0f;
  if (is_block_dtype(dtype)) {
    const QuantFormat* f = quant_format(dtype);
    DS_CHECK(f && layout == WeightLayout::RowMajor, "weight format ", dtype_name(dtype), " is not supported for compute");
    float blk[256];
    DS_ASSERT(f->block <= 256);
    f->to_f32(static_cast<const uint8_t*>(data) + r * row_bytes() + (c / f->block) * f->block_bytes, blk, f->block);
    return blk[c % f->block];
  }
  if (layout == WeightLayout::Rows16) {
    const uint8_t* p = static_cast<const uint8_t*>(data) + rows16_offset(dtype, cols, r, c);
    if (dtype == DType::BF16) {
      uint16_t h;
      std::memcpy(&h, p, 2);
      v = bf16_to_f32(h);
    } else if (dtype == DType::F8_E4M3) {
      v = fp8_e4m3_to_f32(*p);
    } else {
      fail("Rows16 layout holds BF16 or F8_E4M3 weights, not ", dtype_name(dtype));
    }
  } else {
    switch (dtype) {
      case DType::F32: v = static_cast<const float*>(data)[i]; break;
      case DType::BF16: v = bf16_to_f32(static_cast<const uint16_t*>(data)[i]); break;
      case DType::F16: v = f16_to_f32(static_cast<const uint16_t*>(data)[i]); break;
      case DType::F8_E4M3: v = fp8_e4m3_to_f32(static_cast<const uint8_t*>(data)[i]); break;
      default: fail("weight dtype ", dtype_name(dtype), " is not supported for compute");
    }
  }
  if (scale) v *= scale[((row0 + r) / block_rows) * scale_cols + c / block_cols];
  return v;
}

void WeightView::row_f32(int64_t r, float* out) const {
  const QuantFormat* f = quant_format(dtype);
  if (layout != WeightLayout::RowMajor || !f) {
    for (int64_t c = 0; c < cols; ++c) out[c] = at(r, c);  // Rows16, or the reference's error for other types
    return;
  }
  f->to_f32(static_cast<const uint8_t*>(data) + r * row_bytes(), out, cols);
  if (scale) {
    const float* srow = scale + ((row0 + r) / block_rows) * scale_cols;
    for (int64_t c = 0; c < cols; ++c) out[c] *= srow[c / block_cols];
  }
}

}  // namespace ds
