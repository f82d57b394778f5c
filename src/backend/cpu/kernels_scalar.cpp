// SPDX-License-Identifier: MIT
// Scalar level: the generic kernels with one-lane "vectors" (the fallback for CPUs without AVX2).
#include <algorithm>
#include <cstring>
#include <vector>

#include "backend/cpu/kernels.h"

namespace ds::cpu {
namespace {

struct Vt {
  using V = float;
  static constexpr int L = 1, MR = 4, NR_SMALL_M = 4, NR_LARGE_M = 4, NR_PREFILL = 4;
  static V zero() { return 0.0f; }
  static V set1(float f) { return f; }
  static V load(const float* p) { return *p; }
  static void store(float* p, V v) { *p = v; }
  static V fma(V a, V b, V c) { return a * b + c; }
  static V mul(V a, V b) { return a * b; }
  static V add(V a, V b) { return a + b; }
  static float hsum(V v) { return v; }
  static V maskload(const float* p, int n) { return n > 0 ? *p : 0.0f; }
  static void maskstore(float* p, int n, V v) { if (n > 0) *p = v; }
  static V w_f32(const uint8_t* p) { float f; std::memcpy(&f, p, 4); return f; }
  static V w_bf16(const uint8_t* p) { uint16_t h; std::memcpy(&h, p, 2); return bf16_to_f32(h); }
  static V w_f16(const uint8_t* p) { uint16_t h; std::memcpy(&h, p, 2); return f16_to_f32(h); }
  static V pair_lo(const uint8_t* p) { uint16_t h; std::memcpy(&h, p, 2); return bf16_to_f32(h); }
  static V pair_hi(const uint8_t* p) { uint16_t h; std::memcpy(&h, p + 2, 2); return bf16_to_f32(h); }
  // Same q * 2^-8 convention as the SIMD levels (exact: a power-of-two scaling of an e4m3 value).
  static V w_e4m3(const uint8_t* p) { return fp8_e4m3_to_f32(*p) * 0.00390625f; }
};

#include "backend/cpu/kernels_impl.inc"

}  // namespace

const Kernels& kernels_scalar() {
  static const Kernels k{Isa::Scalar, &mm_rows, nullptr, &dot, &axpy, &mm_r16_f32, nullptr, &convert_cols, &index_scores};
  return k;
}

}  // namespace ds::cpu
