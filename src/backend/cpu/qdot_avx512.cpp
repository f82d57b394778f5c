// SPDX-License-Identifier: MIT
// AVX-512 (F/BW/VL/DQ) + VNNI level of the block-weight dot products (backend/cpu/qdot.h): Q8_0, Q4_0, Q5_0, IQ4_NL
// (Q8_0 activations) and Q2_K, Q3_K, Q4_K, Q5_K, Q6_K, IQ4_XS (Q8_K activations); the other formats fall back to the
// scalar level. qdot_for only picks this table where the CPU has avx512vnni.
//
// Each weight block is decoded once into 64-byte vectors and applied to up to 8 activation rows (more rows run in
// passes of 8 over the row, which is then in L1).
//   32-element formats: one block per ymm (AVX-512VL); |w| x sign(w)·a through vpdpbusd (exact int32 per 4
//     products), one fp32 scale d_w·d_a per block. (Two blocks per zmm with per-half scales measured slower on Zen 4,
//     where 512-bit ops take two 256-bit slots, and the scale vector costs more than it saves.)
//   256-element formats: 4 chunks of 64 elements; vpmaddubsw forms u·a pairs in int16 (unsigned quants u <= 63 or
//     |w| <= 127 against |a| <= 127: no saturation), vpdpwssd multiplies them by the per-lane sub-block scales and
//     accumulates the super-block in int32; offsets (Q6_K's -32, Q3_K's -4) fold in through the activation block sums
//     (bsums) in the same int32 sum, mins (Q2_K, Q4_K, Q5_K) through bsums with their own fp32 scale.
// The Q8_0 / Q8_K quantisers never produce -128, which the sign trick (negating a) relies on.
// GCC 12 reports its own intrinsic headers' _mm512_undefined_* temporaries as uninitialised (GCC PR 105593).
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>

#include <cstring>
#include <type_traits>

#include "backend/cpu/qdot.h"
#include "base/quant.h"

#pragma GCC push_options
#pragma GCC target("avx512f,avx512bw,avx512vl,avx512dq,avx512vnni,avx2,fma,f16c")

namespace ds::cpu {
namespace {

constexpr int kMaxRows = 8;  // activation rows per pass (32 zmm registers)

inline uint16_t rd16(const uint8_t* p) { uint16_t v; std::memcpy(&v, p, 2); return v; }
inline uint32_t rd32(const uint8_t* p) { uint32_t v; std::memcpy(&v, p, 4); return v; }
inline float h2f(const uint8_t* p) { return _cvtsh_ss(rd16(p)); }
inline float rdf32(const uint8_t* p) { float v; std::memcpy(&v, p, 4); return v; }
inline __m512i ld512(const uint8_t* p) { return _mm512_loadu_si512(p); }
inline __m256i ld256(const uint8_t* p) { return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)); }
inline __m128i ld128(const uint8_t* p) { return _mm_loadu_si128(reinterpret_cast<const __m128i*>(p)); }
// 32 bytes broadcast to both halves of a zmm.
inline __m512i bcast256(const uint8_t* p) { return _mm512_broadcast_i64x4(ld256(p)); }

// int16 lanes: the low 16 = a, the high 16 = b.
inline __m512i halves16(int a, int b) {
  return _mm512_mask_blend_epi16(__mmask32(0xFFFF0000u), _mm512_set1_epi16(int16_t(a)), _mm512_set1_epi16(int16_t(b)));
}

alignas(64) constexpr int16_t kIota[32] = {0,  1,  2,  3,  4,  5,  6,  7,  8,  9,  10, 11, 12, 13, 14, 15,
                                           16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31};
inline __m512i iota16() { return _mm512_load_si512(kIota); }
// Per-lane scales of 64-element chunk k from the int16 scales in lanes 0..15 of S (lane i covers elements 2i, 2i+1).
inline __m512i chunk_scales16(__m512i S, int k) {  // 16-element sub-blocks: lane i -> sub-block 4k + i/8
  return _mm512_permutexvar_epi16(_mm512_add_epi16(_mm512_srli_epi16(iota16(), 3), _mm512_set1_epi16(int16_t(4 * k))), S);
}
inline __m512i chunk_scales32(__m512i S, int k) {  // 32-element sub-blocks: lane i -> sub-block 2k + i/16
  return _mm512_permutexvar_epi16(_mm512_add_epi16(_mm512_srli_epi16(iota16(), 4), _mm512_set1_epi16(int16_t(2 * k))), S);
}

inline __m256i iq4nl_table256() {
  return _mm256_broadcastsi128_si256(
      _mm_setr_epi8(-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113));
}

// ---- 32-element formats: signed int8 weights of one block --------------------------------------------------------

inline __m256i nibbles32(const uint8_t* p) {
  const __m128i q = ld128(p);
  return _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(q, 4), q), _mm256_set1_epi8(15));
}

struct Q8_0D {
  static constexpr int kBytes = 34;
  static __m256i decode(const uint8_t* b) { return ld256(b + 2); }
};
struct Q4_0D {
  static constexpr int kBytes = 18;
  static __m256i decode(const uint8_t* b) { return _mm256_sub_epi8(nibbles32(b + 2), _mm256_set1_epi8(8)); }
};
struct Q5_0D {
  static constexpr int kBytes = 22;
  static __m256i decode(const uint8_t* b) {
    const __m256i hi = _mm256_maskz_mov_epi8(__mmask32(rd32(b + 2)), _mm256_set1_epi8(16));  // bit i -> element i
    return _mm256_sub_epi8(_mm256_or_si256(nibbles32(b + 6), hi), _mm256_set1_epi8(16));
  }
};
struct IQ4_NLD {
  static constexpr int kBytes = 18;
  static __m256i decode(const uint8_t* b) { return _mm256_shuffle_epi8(iq4nl_table256(), nibbles32(b + 2)); }
};

template <class D, int MB>
void k32(const uint8_t* w, const uint8_t* a, int64_t as, int64_t nb, float* out, int64_t ldo) {
  __m256 acc[MB];
  for (int m = 0; m < MB; ++m) acc[m] = _mm256_setzero_ps();
  constexpr int64_t kA = int64_t(sizeof(BlockQ8_0));
  for (int64_t b = 0; b < nb; ++b) {
    const uint8_t* x = w + b * D::kBytes;
    const __m256i wv = D::decode(x);
    const __m256i wa = _mm256_abs_epi8(wv);  // -128 -> 0x80, read as unsigned 128
    const float dw = h2f(x);
    for (int m = 0; m < MB; ++m) {
      const uint8_t* y = a + m * as + b * kA;
      const __m256i av = _mm256_sign_epi8(ld256(y + 2), wv);
      const __m256i p = _mm256_dpbusd_epi32(_mm256_setzero_si256(), wa, av);
      acc[m] = _mm256_fmadd_ps(_mm256_set1_ps(dw * h2f(y)), _mm256_cvtepi32_ps(p), acc[m]);
    }
  }
  for (int m = 0; m < MB; ++m) {
    __m128 v = _mm_add_ps(_mm256_castps256_ps128(acc[m]), _mm256_extractf128_ps(acc[m], 1));
    v = _mm_add_ps(v, _mm_movehl_ps(v, v));
    out[m * ldo] = _mm_cvtss_f32(_mm_add_ss(v, _mm_movehdup_ps(v)));
  }
}

// ---- 256-element formats ----------------------------------------------------------------------------------------
// A decoder fills, for one super-block, the 4 chunks (64 elements each, in element order) of unsigned quants u (|w|
// for signed formats, with the negative lanes in neg), their int16 per-lane scales sc, and d, dmin, corr, mins:
//   value = d * d_a * (Σ_k Σ sc·(u·a) + Σ_j corr_j bsum_j) - dmin * d_a * Σ_j mins_j bsum_j
// (corr, mins: int16 lanes 0..15, one per 16-element activation sum).

struct SB {
  __m512i u[4], sc[4], corr, mins;
  __mmask64 neg[4];
  float d, dmin;
};

// Q4_K / Q5_K 6-bit scales and mins as bytes: [sc0..sc7, mn0..mn7].
inline __m128i k4_scales(const uint8_t* s) {
  const uint32_t w0 = rd32(s), w1 = rd32(s + 4), w2 = rd32(s + 8);
  const uint32_t sc0 = w0 & 0x3f3f3f3f, mn0 = w1 & 0x3f3f3f3f;
  const uint32_t sc1 = (w2 & 0x0f0f0f0f) | (((w0 >> 6) & 0x03030303) << 4);
  const uint32_t mn1 = ((w2 >> 4) & 0x0f0f0f0f) | (((w1 >> 6) & 0x03030303) << 4);
  return _mm_set_epi32(int(mn1), int(mn0), int(sc1), int(sc0));
}
// vpshufb controls that widen byte j of each 128-bit lane to int16 (0x80 zeroes the high byte).
constexpr uint64_t widen_ctrl(int j) { return 0x8000800080008000ull | 0x0001000100010001ull * uint64_t(j); }
// Per-lane scales of 64-element chunk k for 32-element sub-blocks: [sc[2k] x16 | sc[2k+1] x16] from the bytes
// broadcast to every 128-bit lane.
inline __m512i k4_chunk_scales(__m512i Sb, int k) {
  const uint64_t a = widen_ctrl(2 * k), b = widen_ctrl(2 * k + 1);
  return _mm512_shuffle_epi8(Sb, _mm512_set_epi64(int64_t(b), int64_t(b), int64_t(b), int64_t(b), int64_t(a),
                                                  int64_t(a), int64_t(a), int64_t(a)));
}
// mins of 32-element sub-blocks, once per 16-element activation sum: int16 lane j -> mn[j / 2] (lanes 0..15).
inline __m512i k4_mins(__m512i Sb) {
  const auto c = [](int j0) {  // int16 lanes j0..j0+3 -> mins j0/2, j0/2, j0/2+1, j0/2+1
    return int64_t(0x8000800080008000ull | uint64_t(8 + j0 / 2) | (uint64_t(8 + j0 / 2) << 16) |
                   (uint64_t(9 + j0 / 2) << 32) | (uint64_t(9 + j0 / 2) << 48));
  };
  return _mm512_shuffle_epi8(Sb, _mm512_set_epi64(0, 0, 0, 0, c(12), c(8), c(4), c(0)));
}

struct Q4_KD {
  static constexpr int kBytes = 144;
  static constexpr bool kSigned = false, kCorr = false, kMin = true;
  static void run(const uint8_t* x, SB& s) {
    s.d = h2f(x);
    s.dmin = h2f(x + 2);
    const __m512i Sb = _mm512_broadcast_i32x4(k4_scales(x + 4));
    s.mins = k4_mins(Sb);
    const __m512i sh = halves16(0, 4), m4 = _mm512_set1_epi8(15);
    for (int k = 0; k < 4; ++k) {
      s.u[k] = _mm512_and_si512(_mm512_srlv_epi16(bcast256(x + 16 + 32 * k), sh), m4);
      s.sc[k] = k4_chunk_scales(Sb, k);
    }
  }
};

struct Q5_KD {
  static constexpr int kBytes = 176;
  static constexpr bool kSigned = false, kCorr = false, kMin = true;
  static void run(const uint8_t* x, SB& s) {
    s.d = h2f(x);
    s.dmin = h2f(x + 2);
    const __m512i Sb = _mm512_broadcast_i32x4(k4_scales(x + 4));
    s.mins = k4_mins(Sb);
    const __m512i sh = halves16(0, 4), m4 = _mm512_set1_epi8(15), one = _mm512_set1_epi8(1);
    const __m512i qh = bcast256(x + 16);
    for (int k = 0; k < 4; ++k) {
      const __m512i lo = _mm512_and_si512(_mm512_srlv_epi16(bcast256(x + 48 + 32 * k), sh), m4);
      const __m512i hb = _mm512_and_si512(_mm512_srlv_epi16(qh, halves16(2 * k, 2 * k + 1)), one);
      s.u[k] = _mm512_or_si512(lo, _mm512_slli_epi16(hb, 4));
      s.sc[k] = k4_chunk_scales(Sb, k);
    }
  }
};

struct Q6_KD {
  static constexpr int kBytes = 210;
  static constexpr bool kSigned = false, kCorr = true, kMin = false;
  static void run(const uint8_t* x, SB& s) {
    s.d = h2f(x + 208);
    const __m256i S16 = _mm256_cvtepi8_epi16(ld128(x + 192));
    const __m512i S = _mm512_zextsi256_si512(S16);
    s.corr = _mm512_zextsi256_si512(_mm256_mullo_epi16(S16, _mm256_set1_epi16(-32)));  // q6 = u - 32
    const __m512i m4 = _mm512_set1_epi8(15), m30 = _mm512_set1_epi8(0x30);
    const __m512i shl = halves16(4, 2), shr = halves16(0, 2);
    for (int n = 0; n < 2; ++n) {
      const __m512i ql = ld512(x + 64 * n);
      const __m512i qh = bcast256(x + 128 + 32 * n);
      // elements 0..63 of the half: ql & 15 | (qh >> {0, 2} & 3) << 4; elements 64..127: ql >> 4 | (qh >> {4, 6} & 3) << 4
      s.u[2 * n] = _mm512_or_si512(_mm512_and_si512(ql, m4), _mm512_and_si512(_mm512_sllv_epi16(qh, shl), m30));
      s.u[2 * n + 1] = _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi16(ql, 4), m4),
                                       _mm512_and_si512(_mm512_srlv_epi16(qh, shr), m30));
    }
    for (int k = 0; k < 4; ++k) s.sc[k] = chunk_scales16(S, k);
  }
};

struct Q3_KD {
  static constexpr int kBytes = 110;
  static constexpr bool kSigned = false, kCorr = true, kMin = false;
  static void run(const uint8_t* x, SB& s) {
    s.d = h2f(x + 108);
    const uint8_t* sp = x + 96;
    const uint32_t w0 = rd32(sp), w1 = rd32(sp + 4), t = rd32(sp + 8);
    const uint32_t u0 = (w0 & 0x0f0f0f0f) | (((t >> 0) & 0x03030303) << 4);
    const uint32_t u1 = (w1 & 0x0f0f0f0f) | (((t >> 2) & 0x03030303) << 4);
    const uint32_t u2 = ((w0 >> 4) & 0x0f0f0f0f) | (((t >> 4) & 0x03030303) << 4);
    const uint32_t u3 = ((w1 >> 4) & 0x0f0f0f0f) | (((t >> 6) & 0x03030303) << 4);
    const __m256i S16 = _mm256_sub_epi16(_mm256_cvtepu8_epi16(_mm_set_epi32(int(u3), int(u2), int(u1), int(u0))),
                                         _mm256_set1_epi16(32));
    const __m512i S = _mm512_zextsi256_si512(S16);
    s.corr = _mm512_zextsi256_si512(_mm256_mullo_epi16(S16, _mm256_set1_epi16(-4)));  // q3 = u - 4
    const __m512i hm = bcast256(x), m3 = _mm512_set1_epi8(3), one = _mm512_set1_epi8(1);
    for (int k = 0; k < 4; ++k) {
      const int n = k / 2, h = k % 2;  // elements 128n + 64h + t: 2-bit field j = 2h + (t >= 32), at bit 2j of qs
      const __m512i lo = _mm512_and_si512(_mm512_srlv_epi16(bcast256(x + 32 + 32 * n), halves16(4 * h, 4 * h + 2)), m3);
      const __m512i hb = _mm512_and_si512(_mm512_srlv_epi16(hm, halves16(4 * n + 2 * h, 4 * n + 2 * h + 1)), one);
      s.u[k] = _mm512_or_si512(lo, _mm512_slli_epi16(hb, 2));
      s.sc[k] = chunk_scales16(S, k);
    }
  }
};

struct Q2_KD {
  static constexpr int kBytes = 84;
  static constexpr bool kSigned = false, kCorr = false, kMin = true;
  static void run(const uint8_t* x, SB& s) {
    s.d = h2f(x + 80);
    s.dmin = h2f(x + 82);
    const __m128i sc = ld128(x), m4 = _mm_set1_epi8(15);
    const __m512i S = _mm512_zextsi256_si512(_mm256_cvtepu8_epi16(_mm_and_si128(sc, m4)));
    s.mins = _mm512_zextsi256_si512(_mm256_cvtepu8_epi16(_mm_and_si128(_mm_srli_epi16(sc, 4), m4)));
    const __m512i m3 = _mm512_set1_epi8(3);
    for (int k = 0; k < 4; ++k) {
      const int n = k / 2, h = k % 2;
      s.u[k] = _mm512_and_si512(_mm512_srlv_epi16(bcast256(x + 16 + 32 * n), halves16(4 * h, 4 * h + 2)), m3);
      s.sc[k] = chunk_scales16(S, k);
    }
  }
};

struct IQ4_XSD {
  static constexpr int kBytes = 136;
  static constexpr bool kSigned = true, kCorr = false, kMin = false;
  static void run(const uint8_t* x, SB& s) {
    s.d = h2f(x);
    const uint16_t sh = rd16(x + 2);
    alignas(32) int16_t ls[16] = {};
    for (int ib = 0; ib < 8; ++ib)
      ls[ib] = int16_t((((x[4 + ib / 2] >> (4 * (ib % 2))) & 15) | (((sh >> (2 * ib)) & 3) << 4)) - 32);
    const __m512i S = _mm512_zextsi256_si512(_mm256_load_si256(reinterpret_cast<const __m256i*>(ls)));
    const __m512i tab = _mm512_broadcast_i32x4(
        _mm_setr_epi8(-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113));
    // 128-bit lanes [q0..15, q0..15, q16..31, q16..31] -> low nibbles, high nibbles, low, high (sub-blocks 2k, 2k+1)
    const __m512i sh4 = _mm512_mask_blend_epi16(__mmask32(0xFF00FF00u), _mm512_setzero_si512(), _mm512_set1_epi16(4));
    const __m512i m4 = _mm512_set1_epi8(15);
    for (int k = 0; k < 4; ++k) {
      const __m512i q = _mm512_castsi256_si512(ld256(x + 8 + 32 * k));
      const __m512i idx = _mm512_and_si512(_mm512_srlv_epi16(_mm512_shuffle_i64x2(q, q, 0x50), sh4), m4);
      const __m512i wv = _mm512_shuffle_epi8(tab, idx);
      s.u[k] = _mm512_abs_epi8(wv);
      s.neg[k] = _mm512_movepi8_mask(wv);
      s.sc[k] = chunk_scales32(S, k);
    }
  }
};

template <class D, int MB>
void k256(const uint8_t* w, const uint8_t* a, int64_t as, int64_t nb, float* out, int64_t ldo) {
  __m512 acc[MB];
  __m256 accm[MB];  // the min terms (8 int32 lanes: 256-bit ops suffice)
  for (int m = 0; m < MB; ++m) acc[m] = _mm512_setzero_ps();
  for (int m = 0; m < MB; ++m) accm[m] = _mm256_setzero_ps();
  const __m512i zero = _mm512_setzero_si512();
  for (int64_t b = 0; b < nb; ++b) {
    SB s;
    D::run(w + b * D::kBytes, s);
    for (int m = 0; m < MB; ++m) {
      const uint8_t* y = a + m * as + b * int64_t(sizeof(BlockQ8_K));
      __m512i sumi = zero;
      for (int k = 0; k < 4; ++k) {
        __m512i av = ld512(y + 4 + 64 * k);
        if constexpr (D::kSigned) av = _mm512_mask_sub_epi8(av, s.neg[k], zero, av);
        sumi = _mm512_dpwssd_epi32(sumi, _mm512_maddubs_epi16(s.u[k], av), s.sc[k]);
      }
      const __m256i bs = ld256(y + 260);
      if constexpr (D::kCorr) sumi = _mm512_dpwssd_epi32(sumi, _mm512_zextsi256_si512(bs), s.corr);
      const float da = rdf32(y);
      acc[m] = _mm512_fmadd_ps(_mm512_set1_ps(s.d * da), _mm512_cvtepi32_ps(sumi), acc[m]);
      if constexpr (D::kMin)
        accm[m] = _mm256_fmadd_ps(_mm256_set1_ps(-s.dmin * da),
                                  _mm256_cvtepi32_ps(_mm256_madd_epi16(bs, _mm512_castsi512_si256(s.mins))), accm[m]);
    }
  }
  for (int m = 0; m < MB; ++m) {
    if constexpr (D::kMin) acc[m] = _mm512_add_ps(acc[m], _mm512_zextps256_ps512(accm[m]));
    out[m * ldo] = _mm512_reduce_add_ps(acc[m]);
  }
}

// ---- M dispatch --------------------------------------------------------------------------------------------------

using RowsFn = void (*)(const uint8_t*, const uint8_t*, int64_t, int64_t, float*, int64_t);

// K<D>::template rows<MB> for MB = 1..kMaxRows: one pass of MB activation rows.
template <class D> struct K32 {
  template <int MB> static void rows(const uint8_t* w, const uint8_t* a, int64_t as, int64_t nb, float* out, int64_t ldo) {
    k32<D, MB>(w, a, as, nb, out, ldo);
  }
};
template <class D> struct K256 {
  template <int MB> static void rows(const uint8_t* w, const uint8_t* a, int64_t as, int64_t nb, float* out, int64_t ldo) {
    k256<D, MB>(w, a, as, nb, out, ldo);
  }
};

template <class K, int Block>
void run(const void* w, const void* a, int64_t as, int M, int64_t n, float* out, int64_t ldo) {
  static constexpr RowsFn fns[kMaxRows] = {K::template rows<1>, K::template rows<2>, K::template rows<3>, K::template rows<4>, K::template rows<5>, K::template rows<6>, K::template rows<7>, K::template rows<8>};
  const auto* wp = static_cast<const uint8_t*>(w);
  const auto* ap = static_cast<const uint8_t*>(a);
  for (int m0 = 0; m0 < M; m0 += kMaxRows) {
    const int mb = M - m0 < kMaxRows ? M - m0 : kMaxRows;
    fns[mb - 1](wp, ap + m0 * as, as, n / Block, out + m0 * ldo, ldo);
  }
}

}  // namespace

QDotFn qdot_avx512(DType wt) {
  switch (wt) {
    case DType::Q8_0: return run<K32<Q8_0D>, 32>;
    case DType::Q4_0: return run<K32<Q4_0D>, 32>;
    case DType::Q5_0: return run<K32<Q5_0D>, 32>;
    case DType::IQ4_NL: return run<K32<IQ4_NLD>, 32>;
    case DType::Q2_K: return run<K256<Q2_KD>, 256>;
    case DType::Q3_K: return run<K256<Q3_KD>, 256>;
    case DType::Q4_K: return run<K256<Q4_KD>, 256>;
    case DType::Q5_K: return run<K256<Q5_KD>, 256>;
    case DType::Q6_K: return run<K256<Q6_KD>, 256>;
    case DType::IQ4_XS: return run<K256<IQ4_XSD>, 256>;
    default: return nullptr;
  }
}

}  // namespace ds::cpu

#pragma GCC pop_options
