// SPDX-License-Identifier: MIT
#include "base/kv_rows.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "base/error.h"

namespace ds {

bool is_kv_dtype(DType t) { return t == DType::F32 || t == DType::BF16 || t == DType::F8_E4M3; }

int64_t kv_row_bytes(DType t, int64_t width) {
  switch (t) {
    case DType::F32: return 4 * width;
    case DType::BF16: return (2 * width + 3) / 4 * 4;
    case DType::F8_E4M3: return kv_scale_offset(width) + 4 * ((width + kKvTile - 1) / kKvTile);
    default: fail("KV cache: ", dtype_name(t), " is not a KV cache format (f32, bf16, fp8)");
  }
}

const char* kv_dtype_name(DType t) {
  switch (t) {
    case DType::F32: return "f32";
    case DType::BF16: return "bf16";
    case DType::F8_E4M3: return "fp8";
    default: return "?";
  }
}

DType parse_kv_dtype(const std::string& s) {
  if (s == "f32") return DType::F32;
  if (s == "bf16") return DType::BF16;
  if (s == "fp8") return DType::F8_E4M3;
  fail("--kv-dtype '", s, "' is not one of: f32, bf16, fp8");
}

void kv_encode_row(DType t, const float* x, int64_t width, void* row) {
  uint8_t* r = static_cast<uint8_t*>(row);
  switch (t) {
    case DType::F32: std::memcpy(r, x, size_t(width) * 4); return;
    case DType::BF16:
      for (int64_t i = 0; i < width; ++i) {
        const uint16_t h = f32_to_bf16(x[i]);
        std::memcpy(r + 2 * i, &h, 2);
      }
      std::memset(r + 2 * width, 0, size_t(kv_row_bytes(t, width) - 2 * width));
      return;
    case DType::F8_E4M3: {
      std::memset(r + width, 0, size_t(kv_scale_offset(width) - width));
      for (int64_t c0 = 0, k = 0; c0 < width; c0 += kKvTile, ++k) {
        const int64_t n = std::min(kKvTile, width - c0);
        float amax = 0.0f;
        for (int64_t i = 0; i < n; ++i) amax = std::max(amax, std::fabs(x[c0 + i]));
        const float scale = amax / 448.0f;
        std::memcpy(r + kv_scale_offset(width) + 4 * k, &scale, 4);
        for (int64_t i = 0; i < n; ++i) r[c0 + i] = scale > 0.0f ? f32_to_fp8_e4m3(x[c0 + i] / scale) : 0;
      }
      return;
    }
    default: fail("KV cache: ", dtype_name(t), " is not a KV cache format (f32, bf16, fp8)");
  }
}

void kv_decode_row(DType t, const void* row, int64_t width, int64_t c0, int64_t n, float* out) {
  const uint8_t* r = static_cast<const uint8_t*>(row);
  switch (t) {
    case DType::F32: std::memcpy(out, r + 4 * c0, size_t(n) * 4); return;
    case DType::BF16:
      for (int64_t i = 0; i < n; ++i) {
        uint16_t h;
        std::memcpy(&h, r + 2 * (c0 + i), 2);
        out[i] = bf16_to_f32(h);
      }
      return;
    case DType::F8_E4M3:
      for (int64_t i = 0; i < n; ++i) {
        const int64_t c = c0 + i;
        float scale;
        std::memcpy(&scale, r + kv_scale_offset(width) + 4 * (c / kKvTile), 4);
        out[i] = fp8_e4m3_to_f32(r[c]) * scale;
      }
      return;
    default: fail("KV cache: ", dtype_name(t), " is not a KV cache format (f32, bf16, fp8)");
  }
}

}  // namespace ds
