// SPDX-License-Identifier: MIT
// Element types as they appear in checkpoints, and exact scalar conversions between them.
#pragma once
#include <cstdint>
#include <cstring>
#include <string_view>

namespace ds {

// Element types of checkpoints (safetensors), then ggml's block formats (GGUF weights and the int8 activation blocks
// their dot products use). A block format stores a row as whole blocks of `block` elements; see base/quant.h.
enum class DType : uint8_t {
  F32, F16, BF16, F8_E4M3, F8_E5M2, F64, I64, I32, I16, I8, U8, BOOL, U16, U32, U64, F8_E8M0,
  Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q8_1, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K, Q8_K,
  IQ2_XXS, IQ2_XS, IQ3_XXS, IQ1_S, IQ4_NL, IQ3_S, IQ2_S, IQ4_XS, IQ1_M,
};

// Size in bytes of one element; 0 for block formats (use row_bytes / quant_format from base/quant.h).
int dtype_size(DType t);
// The safetensors spelling ("BF16", "F8_E4M3", ...), or ggml's type name for block formats ("Q4_K", ...).
std::string_view dtype_name(DType t);
// Parses a safetensors dtype string; returns false for unknown strings (block formats are not safetensors dtypes).
bool parse_dtype(std::string_view s, DType* out);
// True for ggml block formats.
bool is_block_dtype(DType t);

inline float bits_to_f32(uint32_t u) { float f; std::memcpy(&f, &u, 4); return f; }
inline uint32_t f32_to_bits(float f) { uint32_t u; std::memcpy(&u, &f, 4); return u; }

// bf16 is the top half of an fp32: widening is exact.
inline float bf16_to_f32(uint16_t h) { return bits_to_f32(uint32_t(h) << 16); }
// Round to nearest even, as torch does; NaN stays NaN.
inline uint16_t f32_to_bf16(float f) {
  uint32_t u = f32_to_bits(f);
  if ((u & 0x7fffffffu) > 0x7f800000u) return uint16_t((u >> 16) | 0x40);
  u += 0x7fffu + ((u >> 16) & 1u);
  return uint16_t(u >> 16);
}

float f16_to_f32(uint16_t h);
uint16_t f32_to_f16(float f);

// float8_e4m3fn: 1 sign, 4 exponent (bias 7), 3 mantissa; no inf; 0x7f/0xff are NaN; subnormals.
// Table lookup: every e4m3 value is exact in fp32 (and in bf16).
extern const float kFp8E4M3ToF32[256];
inline float fp8_e4m3_to_f32(uint8_t b) { return kFp8E4M3ToF32[b]; }
// Round-to-nearest-even with saturation to +-448 (the quantiser's clamp).
uint8_t f32_to_fp8_e4m3(float f);

}  // namespace ds
