// SPDX-License-Identifier: MIT
// AVX-512 (F/BW/VL/DQ) level of the generic kernels (16 fp32 lanes), plus the table for the avx512bf16 level.
// GCC 12 reports its own intrinsic headers' _mm512_undefined_* temporaries as uninitialised (GCC PR 105593).
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include "backend/cpu/kernels.h"

#pragma GCC push_options
#pragma GCC target("avx512f,avx512bw,avx512vl,avx512dq,avx2,fma,f16c")

namespace ds::cpu {
namespace {

struct Vt {
  using V = __m512;
  // 32 zmm registers: prefill tiles are 4 tokens x 6 rows = 24 accumulators + 4 x + 1 w.
  static constexpr int L = 16, MR = 4, NR_SMALL_M = 8, NR_LARGE_M = 6, NR_PREFILL = 6;
  static V zero() { return _mm512_setzero_ps(); }
  static V set1(float f) { return _mm512_set1_ps(f); }
  static V load(const float* p) { return _mm512_loadu_ps(p); }
  static void store(float* p, V v) { _mm512_storeu_ps(p, v); }
  static V fma(V a, V b, V c) { return _mm512_fmadd_ps(a, b, c); }
  static V mul(V a, V b) { return _mm512_mul_ps(a, b); }
  static V add(V a, V b) { return _mm512_add_ps(a, b); }
  static float hsum(V v) { return _mm512_reduce_add_ps(v); }
  static V maskload(const float* p, int n) { return _mm512_maskz_loadu_ps(__mmask16((1u << n) - 1), p); }
  static void maskstore(float* p, int n, V v) { _mm512_mask_storeu_ps(p, __mmask16((1u << n) - 1), v); }
  static V w_f32(const uint8_t* p) { return _mm512_loadu_ps(p); }
  static V w_bf16(const uint8_t* p) {
    const __m512i h = _mm512_cvtepu16_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
    return _mm512_castsi512_ps(_mm512_slli_epi32(h, 16));  // bf16 is the top half of an fp32
  }
  static V w_f16(const uint8_t* p) { return _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p))); }
  // L 32-bit words of bf16 pairs (lo | hi << 16) -> the lo elements / the hi elements as fp32.
  static V pair_lo(const uint8_t* p) { return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_loadu_si512(p), 16)); }
  static V pair_hi(const uint8_t* p) {
    return _mm512_castsi512_ps(_mm512_and_si512(_mm512_loadu_si512(p), _mm512_set1_epi32(int(0xffff0000u))));
  }
  // e4m3 -> fp16 bits (sign | em << 7) = q * 2^-8 exactly, then the hardware fp16 -> fp32 conversion.
  static V w_e4m3(const uint8_t* p) {
    __m256i h = _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
    h = _mm256_and_si256(_mm256_slli_epi16(h, 7), _mm256_set1_epi16(short(0xBF80)));
    return _mm512_cvtph_ps(h);
  }
};

#include "backend/cpu/kernels_impl.inc"

}  // namespace

const Kernels& kernels_avx512() {
  static const Kernels k{Isa::Avx512, &mm_rows, nullptr, &dot, &axpy, &mm_r16_f32, nullptr, &convert_cols, &index_scores};
  return k;
}

}  // namespace ds::cpu

#pragma GCC pop_options
