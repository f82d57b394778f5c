// SPDX-License-Identifier: MIT
// AVX2 + FMA + F16C level of the generic kernels (8 fp32 lanes).
// GCC 12 reports its own intrinsic headers' _mm512_undefined_* temporaries as uninitialised (GCC PR 105593).
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include "backend/cpu/kernels.h"

#pragma GCC push_options
#pragma GCC target("avx2,fma,f16c")

namespace ds::cpu {
namespace {

struct Vt {
  using V = __m256;
  // 16 ymm registers: 4 tokens x 2 rows = 8 accumulators + 4 x + 1 w.
  static constexpr int L = 8, MR = 4, NR_SMALL_M = 4, NR_LARGE_M = 2, NR_PREFILL = 2;
  static V zero() { return _mm256_setzero_ps(); }
  static V set1(float f) { return _mm256_set1_ps(f); }
  static V load(const float* p) { return _mm256_loadu_ps(p); }
  static void store(float* p, V v) { _mm256_storeu_ps(p, v); }
  static V fma(V a, V b, V c) { return _mm256_fmadd_ps(a, b, c); }
  static V mul(V a, V b) { return _mm256_mul_ps(a, b); }
  static V add(V a, V b) { return _mm256_add_ps(a, b); }
  static float hsum(V v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
  }
  static __m256i mask(int n) {
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
  }
  static V maskload(const float* p, int n) { return _mm256_maskload_ps(p, mask(n)); }
  static void maskstore(float* p, int n, V v) { _mm256_maskstore_ps(p, mask(n), v); }
  static V w_f32(const uint8_t* p) { return _mm256_loadu_ps(reinterpret_cast<const float*>(p)); }
  static V w_bf16(const uint8_t* p) {
    const __m256i h = _mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
    return _mm256_castsi256_ps(_mm256_slli_epi32(h, 16));  // bf16 is the top half of an fp32
  }
  static V w_f16(const uint8_t* p) { return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p))); }
  // L 32-bit words of bf16 pairs (lo | hi << 16) -> the lo elements / the hi elements as fp32.
  static V pair_lo(const uint8_t* p) {
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)), 16));
  }
  static V pair_hi(const uint8_t* p) {
    return _mm256_castsi256_ps(_mm256_and_si256(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)),
                                                _mm256_set1_epi32(int(0xffff0000u))));
  }
  // e4m3 -> fp16 bits (sign | em << 7) = q * 2^-8 exactly, then the hardware fp16 -> fp32 conversion.
  static V w_e4m3(const uint8_t* p) {
    __m128i h = _mm_cvtepi8_epi16(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p)));
    h = _mm_and_si128(_mm_slli_epi16(h, 7), _mm_set1_epi16(short(0xBF80)));
    return _mm256_cvtph_ps(h);
  }
};

#include "backend/cpu/kernels_impl.inc"

}  // namespace

const Kernels& kernels_avx2() {
  static const Kernels k{Isa::Avx2, &mm_rows, nullptr, &dot, &axpy, &mm_r16_f32, nullptr, &convert_cols, &index_scores};
  return k;
}

}  // namespace ds::cpu

#pragma GCC pop_options
