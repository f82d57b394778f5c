// SPDX-License-Identifier: MIT
// Storage formats of KV cache rows (model/kv_pool.h, `--kv-dtype`): how one row of `width` fp32 values is kept.
//   F32      width floats (4 w bytes): the values as computed.
//   BF16     width bf16 values, rounded to nearest even (f32_to_bf16), padded to a multiple of 4 bytes (2 w).
//   F8_E4M3  "fp8", scaled as FlashMLA's FP8 cache: per tile of kKvTile consecutive values (the last one may be
//            shorter) one fp32 scale = amax(|x| over the tile) / 448, each value stored as e4m3(x / scale) (round to
//            nearest even, saturating at 448). Bytes: the width e4m3 codes, zero padding to a multiple of 4, then the
//            ceil(width / kKvTile) fp32 scales (w + 4 ceil(w / 128) when w is a multiple of 4). An all-zero tile
//            has scale 0 and codes 0.
// A stored value reads back as exactly one fp32: the bf16 value, or e4m3 value x scale rounded once to fp32. Every
// backend's attention and kv_read use that value; row sizes are multiples of 4 bytes so rows, blocks and scales stay
// 4-byte aligned.
#pragma once
#include <cstdint>
#include <string>

#include "base/dtype.h"

namespace ds {

constexpr int64_t kKvTile = 128;  // values per fp8 scale

// F32, BF16 or F8_E4M3.
bool is_kv_dtype(DType t);
// Bytes of one stored row of `width` values.
int64_t kv_row_bytes(DType t, int64_t width);
// F8_E4M3: where a row's scales start (bytes from the row's start).
inline int64_t kv_scale_offset(int64_t width) { return (width + 3) / 4 * 4; }
// The CLI spelling: "f32", "bf16", "fp8".
const char* kv_dtype_name(DType t);
// Parses --kv-dtype; throws ds::Error naming the flag and the choices otherwise.
DType parse_kv_dtype(const std::string& s);

// row := x[0, width) in format t.
void kv_encode_row(DType t, const float* x, int64_t width, void* row);
// out[0, n) := the stored values [c0, c0 + n) of a row of `width` values, as fp32 (see above).
void kv_decode_row(DType t, const void* row, int64_t width, int64_t c0, int64_t n, float* out);

}  // namespace ds
