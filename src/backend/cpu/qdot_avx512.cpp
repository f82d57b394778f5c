// SPDX-License-Identifier: MIT
// AVX-512 (F/BW/VL/DQ) + VNNI level of the block-weight dot products (backend/cpu/qdot.h): every block weight format,
// Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, IQ4_NL (Q8_0 activations) and Q2_K .. Q6_K, IQ4_XS and the grid i-quants IQ1_S, IQ1_M,
// IQ2_XXS, IQ2_XS, IQ2_S, IQ3_XXS, IQ3_S (Q8_K activations). qdot_for only picks this table where the CPU has
// avx512vnni; the grid i-quants also use BMI2 (pdep / pext), checked here.
//
// Each weight block is decoded once into 64-byte vectors and applied to up to 8 activation rows (more rows run in
// passes of 8 over the row, which is then in L1).
//   32-element formats: one block per ymm (AVX-512VL); |w| x sign(w)·a through vpdpbusd (exact int32 per 4
//     products), one fp32 scale d_w·d_a per block (Q4_1 / Q5_1: unsigned u·a and 1·a, scaled by d_w·d_a and m_w·d_a). (Two blocks per zmm with per-half scales measured slower on Zen 4,
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

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstring>
#include <type_traits>

#include "backend/cpu/qdot.h"
#include "base/quant.h"
#include "base/quant_tables.h"

#pragma GCC push_options
#pragma GCC target("avx512f,avx512bw,avx512vl,avx512dq,avx512vnni,avx2,fma,f16c,bmi2")

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
// Prefetch [p, p + bytes) into L1 (prefetches never fault: past the end of the weights they are harmless).
inline void prefetch_span(const uint8_t* p, int64_t bytes) {
  for (int64_t o = 0; o < bytes; o += 64) _mm_prefetch(reinterpret_cast<const char*>(p + o), _MM_HINT_T0);
}
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

// The 16 packed bytes broadcast to both halves, the high half shifted down a nibble (one variable shift).
inline __m256i nibbles32(const uint8_t* p) {
  const __m256i q = _mm256_broadcastsi128_si256(ld128(p));
  return _mm256_and_si256(_mm256_srlv_epi16(q, _mm256_setr_epi64x(0, 0, 0x0004000400040004, 0x0004000400040004)),
                          _mm256_set1_epi8(15));
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
    // (nibble | high bit << 4) - 16: the elements whose high bit (bit i of qh) is clear lose 16.
    const __m256i lo = nibbles32(b + 6);
    return _mm256_mask_sub_epi8(lo, __mmask32(~rd32(b + 2)), lo, _mm256_set1_epi8(16));
  }
};
struct IQ4_NLD {
  static constexpr int kBytes = 18;
  static __m256i decode(const uint8_t* b) { return _mm256_shuffle_epi8(iq4nl_table256(), nibbles32(b + 2)); }
};

template <class D, int MB>
void k32(const uint8_t* w, const uint8_t* a, int64_t as, int64_t nb, float* out, int64_t ldo) {
  // Two accumulator sets over even and odd blocks, so consecutive blocks' fmadds do not wait on each other's latency
  // (decode). The same for every MB: a row's result never depends on how many rows run with it (batched decode is
  // bitwise single-sequence decode).
  constexpr int U = 2;
  __m256 acc[U][MB];
  for (int u = 0; u < U; ++u)
    for (int m = 0; m < MB; ++m) acc[u][m] = _mm256_setzero_ps();
  constexpr int64_t kA = int64_t(sizeof(BlockQ8_0));
  auto block = [&](int64_t b, __m256* ac) {
    const uint8_t* x = w + b * D::kBytes;
    const __m256i wv = D::decode(x);
    const __m256i wa = _mm256_abs_epi8(wv);  // -128 -> 0x80, read as unsigned 128
    const float dw = h2f(x);
    for (int m = 0; m < MB; ++m) {
      const uint8_t* y = a + m * as + b * kA;
      const __m256i av = _mm256_sign_epi8(ld256(y + 2), wv);
      const __m256i p = _mm256_dpbusd_epi32(_mm256_setzero_si256(), wa, av);
      ac[m] = _mm256_fmadd_ps(_mm256_set1_ps(dw * h2f(y)), _mm256_cvtepi32_ps(p), ac[m]);
    }
  };
  int64_t b = 0;
  for (; b + U <= nb; b += U)
    for (int u = 0; u < U; ++u) block(b + u, acc[u]);
  for (; b < nb; ++b) block(b, acc[0]);
  for (int m = 0; m < MB; ++m) {
    __m256 t = acc[0][m];
    for (int u = 1; u < U; ++u) t = _mm256_add_ps(t, acc[u][m]);
    __m128 v = _mm_add_ps(_mm256_castps256_ps128(t), _mm256_extractf128_ps(t, 1));
    v = _mm_add_ps(v, _mm_movehl_ps(v, v));
    out[m * ldo] = _mm_cvtss_f32(_mm_add_ss(v, _mm_movehdup_ps(v)));
  }
}

// GEMM tile (prefill, and decode of these formats): RM weight rows x RN activation rows over packed activations (qdot.h, QPackedAct). Two
// blocks per zmm: the low half takes the even blocks and the high half the odd ones, which are exactly k32's two
// accumulator sets, so each result is bitwise k32's. The activations are stored as unsigned q + 128 and each weight
// block's lanes start from -128 * (their weight sum), so vpdpbusd leaves Σ w·q per lane as k32's sign trick does.
inline __m512i pair512(__m256i lo, __m256i hi) { return _mm512_inserti64x4(_mm512_castsi256_si512(lo), hi, 1); }
inline __m512 pair512(__m256 lo, __m256 hi) { return _mm512_insertf32x8(_mm512_castps256_ps512(lo), hi, 1); }

// pf (decode, when not null): the weight rows two tiles ahead, prefetched pf_step bytes per block pair (rows read side
// by side are short streams that the hardware prefetchers follow badly).
template <class D, int RM, int RN>
void k32t(const uint8_t* w, int64_t ws, const QPackedAct& x, int64_t nb, float* y, int64_t ldy, bool accumulate,
          const uint8_t* pf, int64_t pf_step) {
  __m512 acc[RM][RN];
  for (int r = 0; r < RM; ++r)
    for (int m = 0; m < RN; ++m) acc[r][m] = _mm512_setzero_ps();
  const __m512i k128 = _mm512_set1_epi8(char(0x80));
  int64_t b = 0;
  for (; b + 2 <= nb; b += 2) {
    if (pf) prefetch_span(pf + b / 2 * pf_step, pf_step);
    __m512i wv[RM], w0[RM];
    __m512 dw[RM];
    for (int r = 0; r < RM; ++r) {
      const uint8_t* blk = w + r * ws + b * D::kBytes;
      wv[r] = pair512(D::decode(blk), D::decode(blk + D::kBytes));
      w0[r] = _mm512_sub_epi32(_mm512_setzero_si512(), _mm512_dpbusd_epi32(_mm512_setzero_si512(), k128, wv[r]));
      dw[r] = pair512(_mm256_set1_ps(h2f(blk)), _mm256_set1_ps(h2f(blk + D::kBytes)));
    }
    for (int m = 0; m < RN; ++m) {
      const __m512i xq = ld512(x.q + m * x.q_stride + b * 32);
      const float* xd = x.d + m * x.d_stride + b;
      const __m512 dx = pair512(_mm256_set1_ps(xd[0]), _mm256_set1_ps(xd[1]));
      for (int r = 0; r < RM; ++r) {
        const __m512i p = _mm512_dpbusd_epi32(w0[r], xq, wv[r]);
        acc[r][m] = _mm512_fmadd_ps(_mm512_mul_ps(dw[r], dx), _mm512_cvtepi32_ps(p), acc[r][m]);
      }
    }
  }
  __m256 lo[RM][RN];
  for (int r = 0; r < RM; ++r)
    for (int m = 0; m < RN; ++m) lo[r][m] = _mm512_castps512_ps256(acc[r][m]);
  if (b < nb) {  // an odd last block: the even set (the low half), as in k32
    for (int r = 0; r < RM; ++r) {
      const uint8_t* blk = w + r * ws + b * D::kBytes;
      const __m256i wv = D::decode(blk);
      const __m256i w0 = _mm256_sub_epi32(_mm256_setzero_si256(),
                                          _mm256_dpbusd_epi32(_mm256_setzero_si256(), _mm256_set1_epi8(char(0x80)), wv));
      const float dw = h2f(blk);
      for (int m = 0; m < RN; ++m) {
        const __m256i p = _mm256_dpbusd_epi32(w0, ld256(x.q + m * x.q_stride + b * 32), wv);
        lo[r][m] = _mm256_fmadd_ps(_mm256_set1_ps(dw * x.d[m * x.d_stride + b]), _mm256_cvtepi32_ps(p), lo[r][m]);
      }
    }
  }
  for (int r = 0; r < RM; ++r)
    for (int m = 0; m < RN; ++m) {
      const __m256 t = _mm256_add_ps(lo[r][m], _mm512_extractf32x8_ps(acc[r][m], 1));
      __m128 v = _mm_add_ps(_mm256_castps256_ps128(t), _mm256_extractf128_ps(t, 1));
      v = _mm_add_ps(v, _mm_movehl_ps(v, v));
      const float out = _mm_cvtss_f32(_mm_add_ss(v, _mm_movehdup_ps(v)));
      float* o = y + m * ldy + r;
      *o = accumulate ? *o + out : out;
    }
}

// Tiles of kTileRows weight rows (kept in L1) by kTileActs activation rows (streamed), remainders with smaller tiles;
// the first tile of a row group prefetches (decode).
constexpr int kTileRows = 4, kTileActs = 3;
template <class D, int RM>
void k32t_rows(const uint8_t* w, int64_t ws, const QPackedAct& x, int M, int64_t nb, float* y, int64_t ldy, bool acc,
               const uint8_t* pf, int64_t pf_step) {
  int m = 0;
  QPackedAct xm = x;
  for (; m + kTileActs <= M; m += kTileActs, pf = nullptr) {
    xm.q = x.q + m * x.q_stride;
    xm.d = x.d + m * x.d_stride;
    k32t<D, RM, kTileActs>(w, ws, xm, nb, y + m * ldy, ldy, acc, pf, pf_step);
  }
  xm.q = x.q + m * x.q_stride;
  xm.d = x.d + m * x.d_stride;
  if (M - m == 2) k32t<D, RM, 2>(w, ws, xm, nb, y + m * ldy, ldy, acc, pf, pf_step);
  else if (M - m == 1) k32t<D, RM, 1>(w, ws, xm, nb, y + m * ldy, ldy, acc, pf, pf_step);
}
template <class D>
void qgemm32(const void* wv, int64_t ws, int R, const QPackedAct& x, int M, int64_t n, float* y, int64_t ldy,
             bool acc) {
  const auto* w = static_cast<const uint8_t*>(wv);
  const int64_t nb = n / 32, pairs = std::max<int64_t>(1, nb / 2);
  // Decode (few activation rows) streams the weights from memory: prefetch two row groups ahead.
  constexpr int kPrefetchTiles = 2;
  const bool decode = M <= 8;
  const int64_t step = decode ? (kTileRows * ws + pairs - 1) / pairs : 0;
  auto pf_for = [&](int r) { return decode ? w + (r + kPrefetchTiles * kTileRows) * ws : nullptr; };
  int r = 0;
  for (; r + kTileRows <= R; r += kTileRows)
    k32t_rows<D, kTileRows>(w + r * ws, ws, x, M, nb, y + r, ldy, acc, pf_for(r), step);
  switch (R - r) {
    case 3: k32t_rows<D, 3>(w + r * ws, ws, x, M, nb, y + r, ldy, acc, pf_for(r), step); break;
    case 2: k32t_rows<D, 2>(w + r * ws, ws, x, M, nb, y + r, ldy, acc, pf_for(r), step); break;
    case 1: k32t_rows<D, 1>(w + r * ws, ws, x, M, nb, y + r, ldy, acc, pf_for(r), step); break;
    default: break;
  }
}

// ---- 32-element formats with a min (Q4_1, Q5_1): unsigned quants u, value = d * u + m --------------------------
// Per activation row: d_w * d_a * Σ u a + m_w * d_a * Σ a, both sums through vpdpbusd (u <= 31, and 1 x a).

struct Q4_1D {
  static constexpr int kBytes = 20;
  static __m256i decode(const uint8_t* b) { return nibbles32(b + 4); }
};
struct Q5_1D {
  static constexpr int kBytes = 24;
  static __m256i decode(const uint8_t* b) {
    return _mm256_or_si256(nibbles32(b + 8), _mm256_maskz_mov_epi8(__mmask32(rd32(b + 4)), _mm256_set1_epi8(16)));
  }
};

template <class D, int MB>
void k32m(const uint8_t* w, const uint8_t* a, int64_t as, int64_t nb, float* out, int64_t ldo) {
  __m256 acc[MB];
  for (int m = 0; m < MB; ++m) acc[m] = _mm256_setzero_ps();
  constexpr int64_t kA = int64_t(sizeof(BlockQ8_0));
  const __m256i ones = _mm256_set1_epi8(1);
  for (int64_t b = 0; b < nb; ++b) {
    const uint8_t* x = w + b * D::kBytes;
    const __m256i u = D::decode(x);
    const float dw = h2f(x), mw = h2f(x + 2);
    for (int m = 0; m < MB; ++m) {
      const uint8_t* y = a + m * as + b * kA;
      const __m256i av = ld256(y + 2);
      const __m256i p = _mm256_dpbusd_epi32(_mm256_setzero_si256(), u, av);
      const __m256i q = _mm256_dpbusd_epi32(_mm256_setzero_si256(), ones, av);
      const float da = h2f(y);
      acc[m] = _mm256_fmadd_ps(_mm256_set1_ps(dw * da), _mm256_cvtepi32_ps(p), acc[m]);
      acc[m] = _mm256_fmadd_ps(_mm256_set1_ps(mw * da), _mm256_cvtepi32_ps(q), acc[m]);
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

// ---- grid i-quants -----------------------------------------------------------------------------------------------
// A grid i-quant's weight is ±level, the level read from a grid entry of 8 (or 4) values. Signed values w = ±g
// (g <= 62) go to vpmaddubsw as u = w + 64 (in [2, 126]: no pair saturates against |a| <= 127), and the offset comes
// back through the bsums in the same int32 sum: corr = -64 · ls per 16 elements.
//
// The grids of IQ2_XXS, IQ2_XS (256, 512 entries of 8 values) and IQ3_XXS, IQ3_S (256, 512 entries of 4 values) are
// looked up in registers, 32 entries at a time: each entry's levels are packed into a 16-bit code (kIq*Codes, made
// at compile time from the tables of base/quant_tables.h) and read with vpermi2w, one per 64 entries, merged by the
// index's high bits. A chunk of 64 elements then takes one vpermw (each group's code to every word of its qword, or
// dword for 4-value grids), one vpsrlvw and a vpshufb level -> u per sign:
//   8-value grids, 3 levels (8, 25, 43): value j's level (2 bits) at bit 2 (j / 2) + 8 (j % 2); word w of a qword,
//     shifted right by 2w, has value 2w's level in bits 0..1 of its low byte and value 2w + 1's in its high byte.
//   4-value grids, 8 levels: value j's level (3 bits) at bit 4 (j / 2) + 8 (j % 2), words shifted by 0, 4; bits 3
//     and 7 of every byte are then clear (vpshufb reads bits 0..3 and zeroes bytes with bit 7 set).
// IQ2_S and IQ1_S / IQ1_M (1024 and 2048 entries: too many table registers) load their grid entries with scalar
// loads (vpgatherqq measured slower on Zen 4).
// The signs are bit masks of 64 elements (vpshufb with the plus or the minus table, or a masked subtract, under the
// mask): stored bytes for IQ2_S / IQ3_S, and for IQ2_XXS / IQ2_XS / IQ3_XXS 7-bit indices into ggml's ksigns_iq2xs,
// whose 8th bit is the parity of the 7: pdep spreads 8 indices to the bytes of a u64 and an xor fold adds the parity
// bits (BMI2, which every AVX-512 CPU has; qdot_avx512 checks it).
// IQ1_S / IQ1_M (values -1, 0, 1) fold their delta (±1/8 of the sub-block scale) into integers, 8 (g ± 1/8) = 8g ± 1:
//   IQ1_S: u = g + 1 in {0, 1, 2}, scale 8 · ls, corr = (-8 ± 1) · ls per 16 elements (the delta's sign is per 32)
//   IQ1_M: u = 8 (g + 1) + (1 ± 1) in [0, 18], scale ls, corr = -9 · ls (the delta's sign is per 8 elements)
// d carries the format's power-of-two factor (1/8, 1/4, 1), exact in fp32.
//
// Rounding: the offsets (64, 9) make the int32 lane sums larger than the dot (|lane| < 2^24, so their conversion to
// fp32 is exact), and the cancellation between lanes happens in the fp32 accumulator: relative to Σ|w a| the error
// stays below ~3e-7 (tests/ops/qdot_test.cpp bounds it by 1e-5).

constexpr int kGridOff = 64;

template <size_t N>
constexpr std::array<uint16_t, N> codes8(const uint64_t (&grid)[N], const uint8_t (&levels)[3]) {
  std::array<uint16_t, N> c{};
  for (size_t i = 0; i < N; ++i)
    for (int j = 0; j < 8; ++j) {
      const uint8_t v = uint8_t(grid[i] >> (8 * j));
      int l = 0;
      while (l < 3 && levels[l] != v) ++l;
      if (l == 3) throw "grid value outside the format's levels";
      c[i] = uint16_t(c[i] | (l << (2 * (j / 2) + 8 * (j % 2))));
    }
  return c;
}
template <size_t N>
constexpr std::array<uint16_t, N> codes4(const uint32_t (&grid)[N], const uint8_t (&levels)[8]) {
  std::array<uint16_t, N> c{};
  for (size_t i = 0; i < N; ++i)
    for (int j = 0; j < 4; ++j) {
      const uint8_t v = uint8_t(grid[i] >> (8 * j));
      int l = 0;
      while (l < 8 && levels[l] != v) ++l;
      if (l == 8) throw "grid value outside the format's levels";
      c[i] = uint16_t(c[i] | (l << (4 * (j / 2) + 8 * (j % 2))));
    }
  return c;
}
constexpr uint8_t kIq2Levels[3] = {8, 25, 43};
constexpr uint8_t kIq3xxsLevels[8] = {4, 12, 20, 28, 36, 44, 52, 62};
constexpr uint8_t kIq3sLevels[8] = {1, 3, 5, 7, 9, 11, 13, 15};
alignas(64) constexpr std::array<uint16_t, 256> kIq2xxsCodes = codes8(iq_tables::kIq2xxsGrid, kIq2Levels);
alignas(64) constexpr std::array<uint16_t, 512> kIq2xsCodes = codes8(iq_tables::kIq2xsGrid, kIq2Levels);
alignas(64) constexpr std::array<uint16_t, 256> kIq3xxsCodes = codes4(iq_tables::kIq3xxsGrid, kIq3xxsLevels);
alignas(64) constexpr std::array<uint16_t, 512> kIq3sCodes = codes4(iq_tables::kIq3sGrid, kIq3sLevels);

// vpshufb tables: code bits 0..3 (the level in bits 0..1 or 0..2) -> 64 + level (plus) or 64 - level (minus).
struct Lut16 {
  uint8_t b[16];
};
constexpr Lut16 level_lut(const uint8_t* levels, int nlevels, int sign) {
  Lut16 t{};
  for (int e = 0; e < 16; ++e) {
    const int l = nlevels == 3 ? (e & 3) : (e & 7);
    t.b[e] = uint8_t(kGridOff + sign * (l < nlevels ? levels[l] : 0));
  }
  return t;
}
struct LevelLuts {
  Lut16 plus, minus;
};
constexpr LevelLuts kIq2Luts = {level_lut(kIq2Levels, 3, 1), level_lut(kIq2Levels, 3, -1)};
constexpr LevelLuts kIq3xxsLuts = {level_lut(kIq3xxsLevels, 8, 1), level_lut(kIq3xxsLevels, 8, -1)};
constexpr LevelLuts kIq3sLuts = {level_lut(kIq3sLevels, 8, 1), level_lut(kIq3sLevels, 8, -1)};
inline __m512i lut512(const Lut16& t) {
  return _mm512_broadcast_i32x4(_mm_loadu_si128(reinterpret_cast<const __m128i*>(t.b)));
}

// vpermw selectors: lane i -> code 8k + i / 4 (8-value grids) or 16 (k % 2) + i / 2 (4-value grids).
struct Sel32 {
  alignas(64) int16_t w[32];
};
constexpr Sel32 make_sel(int per, int base) {
  Sel32 s{};
  for (int i = 0; i < 32; ++i) s.w[i] = int16_t(base + i / per);
  return s;
}
constexpr Sel32 kSel8[4] = {make_sel(4, 0), make_sel(4, 8), make_sel(4, 16), make_sel(4, 24)};
constexpr Sel32 kSel4[2] = {make_sel(2, 0), make_sel(2, 16)};

// Words tab[idx] for 32 word indices < N (N a power of two >= 64): a vpermi2w per 64 words, merged by index bits.
template <int N>
inline __m512i lookup_words(const uint16_t* tab, __m512i idx) {
  if constexpr (N == 64) {
    return _mm512_permutex2var_epi16(_mm512_load_si512(tab), idx, _mm512_load_si512(tab + 32));
  } else {
    const __m512i lo = lookup_words<N / 2>(tab, idx), hi = lookup_words<N / 2>(tab + N / 2, idx);
    return _mm512_mask_blend_epi16(_mm512_test_epi16_mask(idx, _mm512_set1_epi16(int16_t(N / 2))), lo, hi);
  }
}
// u of 64-element chunk k of an 8-value grid from the codes of its 32 groups (3 levels).
inline __m512i levels8(__m512i codes, int k, __mmask64 neg, const LevelLuts& t) {
  const __m512i c = _mm512_srlv_epi16(_mm512_permutexvar_epi16(_mm512_load_si512(kSel8[k].w), codes),
                                      _mm512_set1_epi64(0x0006000400020000));
  const __m512i l = _mm512_and_si512(c, _mm512_set1_epi8(3));  // bit 7 may be set: vpshufb would zero the byte
  return _mm512_mask_shuffle_epi8(_mm512_shuffle_epi8(lut512(t.plus), l), neg, lut512(t.minus), l);
}
// u of 64-element chunk k of a 4-value grid from the codes of its 64 groups (codes[0]: groups 0..31, [1]: 32..63).
inline __m512i levels4(const __m512i codes[2], int k, __mmask64 neg, const LevelLuts& t) {
  const __m512i l = _mm512_srlv_epi16(_mm512_permutexvar_epi16(_mm512_load_si512(kSel4[k % 2].w), codes[k / 2]),
                                      _mm512_set1_epi32(0x00040000));
  return _mm512_mask_shuffle_epi8(_mm512_shuffle_epi8(lut512(t.plus), l), neg, lut512(t.minus), l);
}

// Sign masks of 64 elements from 8 7-bit indices into ksigns_iq2xs, packed in the low 56 bits of src.
inline uint64_t signs_of7(uint64_t src) {
  const uint64_t v = _pdep_u64(src, 0x7F7F7F7F7F7F7F7Full);
  uint64_t t = v ^ (v >> 4);
  t ^= t >> 2;
  t ^= t >> 1;
  return v | ((t & 0x0101010101010101ull) << 7);  // bit 7 of each byte: the parity of its bits 0..6
}
// ... from two u32 of 4 x 7-bit indices (bits 0..27) each (IQ2_XXS, IQ3_XXS).
inline uint64_t signs_xxs(uint32_t a, uint32_t b) {
  return signs_of7((a & 0x0FFFFFFFu) | (uint64_t(b & 0x0FFFFFFFu) << 28));
}
// ... from 8 u16 with the index in bits 9..15 (IQ2_XS).
inline uint64_t signs_xs(uint64_t q0, uint64_t q1) {
  return signs_of7(_pext_u64(q0, 0xFE00FE00FE00FE00ull) | (_pext_u64(q1, 0xFE00FE00FE00FE00ull) << 28));
}
inline uint64_t rd64(const uint8_t* p) { uint64_t v; std::memcpy(&v, p, 8); return v; }

// int16 lane j (0..15) -> S[j / 2]: a per-32-element value for each 16-element bsum.
inline __m512i per16_of_32(__m512i S) { return _mm512_permutexvar_epi16(_mm512_srli_epi16(iota16(), 1), S); }
// 4-bit scales, two per byte (low nibble first), of `nbytes` <= 8 bytes at p -> int16 lanes 2s + 1.
inline __m512i odd_scales4(const uint8_t* p, int nbytes) {
  uint64_t v = 0;
  std::memcpy(&v, p, size_t(nbytes));
  const __m128i b = _mm_cvtsi64_si128(int64_t(v)), m4 = _mm_set1_epi8(15);
  const __m128i n = _mm_unpacklo_epi8(_mm_and_si128(b, m4), _mm_and_si128(_mm_srli_epi16(b, 4), m4));
  const __m256i w = _mm256_cvtepu8_epi16(n);
  return _mm512_zextsi256_si512(_mm256_add_epi16(_mm256_add_epi16(w, w), _mm256_set1_epi16(1)));
}
// IQ2_XXS and IQ3_XXS: per 32 elements a u32 of 4 x 7-bit sign indices and a 4-bit scale s (top); ls = 2s + 1.
inline void xxs_scales(__m256i aux, SB& s) {
  const __m256i ls = _mm256_add_epi32(_mm256_slli_epi32(_mm256_srli_epi32(aux, 28), 1), _mm256_set1_epi32(1));
  const __m512i S = _mm512_zextsi128_si512(_mm256_cvtepi32_epi16(ls));
  s.corr = per16_of_32(_mm512_mullo_epi16(S, _mm512_set1_epi16(-kGridOff)));
  for (int k = 0; k < 4; ++k) s.sc[k] = chunk_scales32(S, k);
}

struct IQ2_XXSD {
  static constexpr int kBytes = 66;
  static constexpr bool kSigned = false, kCorr = true, kMin = false;
  static void run(const uint8_t* x, SB& s) {
    s.d = h2f(x) * 0.125f;
    const __m512i q = ld512(x + 2);  // per 32 elements: u32 of 4 grid indices, u32 of signs and scale
    xxs_scales(_mm512_cvtepi64_epi32(_mm512_srli_epi64(q, 32)), s);
    const __m512i codes = lookup_words<256>(kIq2xxsCodes.data(), _mm512_cvtepu8_epi16(_mm512_cvtepi64_epi32(q)));
    for (int k = 0; k < 4; ++k)
      s.u[k] = levels8(codes, k, signs_xxs(rd32(x + 6 + 16 * k), rd32(x + 14 + 16 * k)), kIq2Luts);
  }
};

struct IQ3_XXSD {
  static constexpr int kBytes = 98;
  static constexpr bool kSigned = false, kCorr = true, kMin = false;
  static void run(const uint8_t* x, SB& s) {
    s.d = h2f(x) * 0.25f;
    xxs_scales(ld256(x + 66), s);
    const __m512i codes[2] = {lookup_words<256>(kIq3xxsCodes.data(), _mm512_cvtepu8_epi16(ld256(x + 2))),
                              lookup_words<256>(kIq3xxsCodes.data(), _mm512_cvtepu8_epi16(ld256(x + 34)))};
    for (int k = 0; k < 4; ++k)
      s.u[k] = levels4(codes, k, signs_xxs(rd32(x + 66 + 8 * k), rd32(x + 70 + 8 * k)), kIq3xxsLuts);
  }
};

struct IQ2_XSD {
  static constexpr int kBytes = 74;
  static constexpr bool kSigned = false, kCorr = true, kMin = false;
  static void run(const uint8_t* x, SB& s) {
    s.d = h2f(x) * 0.125f;
    const __m512i q = ld512(x + 2);  // 32 x (9-bit grid index | 7-bit sign index << 9)
    const __m512i codes = lookup_words<512>(kIq2xsCodes.data(), _mm512_and_si512(q, _mm512_set1_epi16(511)));
    const __m512i S = odd_scales4(x + 66, 8);  // per 16 elements
    s.corr = _mm512_mullo_epi16(S, _mm512_set1_epi16(-kGridOff));
    for (int k = 0; k < 4; ++k) {
      s.u[k] = levels8(codes, k, signs_xs(rd64(x + 2 + 16 * k), rd64(x + 10 + 16 * k)), kIq2Luts);
      s.sc[k] = chunk_scales16(S, k);
    }
  }
};

// Grid entries of 8 groups (indices i[0..7]) by scalar loads.
inline __m512i load8(const uint64_t* g, const uint16_t* i) {
  return _mm512_set_epi64(int64_t(g[i[7]]), int64_t(g[i[6]]), int64_t(g[i[5]]), int64_t(g[i[4]]), int64_t(g[i[3]]),
                          int64_t(g[i[2]]), int64_t(g[i[1]]), int64_t(g[i[0]]));
}

struct IQ2_SD {
  static constexpr int kBytes = 82;
  static constexpr bool kSigned = false, kCorr = true, kMin = false;
  static void run(const uint8_t* x, SB& s) {
    s.d = h2f(x) * 0.125f;
    // 10-bit grid index of group g: qs[g] | (qh[g / 4] >> 2 (g % 4) & 3) << 8
    const __m256i rep = _mm256_shuffle_epi8(
        _mm256_broadcastsi128_si256(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(x + 66))),
        _mm256_setr_epi8(0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 6, 6, 6, 6, 7, 7, 7, 7));
    const __m512i sh = _mm512_set1_epi64(0x0006000400020000);
    const __m512i hi = _mm512_and_si512(_mm512_srlv_epi16(_mm512_cvtepu8_epi16(rep), sh), _mm512_set1_epi16(3));
    const __m512i idx = _mm512_or_si512(_mm512_cvtepu8_epi16(ld256(x + 2)), _mm512_slli_epi16(hi, 8));
    alignas(64) uint16_t id[32];
    _mm512_store_si512(id, idx);
    const __m512i S = odd_scales4(x + 74, 8);
    s.corr = _mm512_mullo_epi16(S, _mm512_set1_epi16(-kGridOff));
    const __m512i off = _mm512_set1_epi8(kGridOff);
    for (int k = 0; k < 4; ++k) {
      const __m512i g = load8(iq_tables::kIq2sGrid, id + 8 * k);
      s.u[k] = _mm512_mask_sub_epi8(_mm512_add_epi8(g, off), rd64(x + 34 + 8 * k), off, g);  // 64 ± g
      s.sc[k] = chunk_scales16(S, k);
    }
  }
};

struct IQ3_SD {
  static constexpr int kBytes = 110;
  static constexpr bool kSigned = false, kCorr = true, kMin = false;
  static void run(const uint8_t* x, SB& s) {
    s.d = h2f(x);
    const __m512i S = odd_scales4(x + 106, 4);  // per 32 elements
    s.corr = per16_of_32(_mm512_mullo_epi16(S, _mm512_set1_epi16(-kGridOff)));
    // 9-bit grid index of group g (4 values): qs[g] | bit g of qh << 8
    const __m512i b8 = _mm512_set1_epi16(256);
    __m512i codes[2];
    for (int h = 0; h < 2; ++h) {
      const __m512i lo = _mm512_cvtepu8_epi16(ld256(x + 2 + 32 * h));
      codes[h] = lookup_words<512>(kIq3sCodes.data(), _mm512_mask_add_epi16(lo, __mmask32(rd32(x + 66 + 4 * h)), lo, b8));
    }
    for (int k = 0; k < 4; ++k) {
      s.u[k] = levels4(codes, k, rd64(x + 74 + 8 * k), kIq3sLuts);
      s.sc[k] = chunk_scales32(S, k);
    }
  }
};

struct IQ1_SD {
  static constexpr int kBytes = 50;
  static constexpr bool kSigned = false, kCorr = true, kMin = false;
  static void run(const uint8_t* x, SB& s) {
    s.d = h2f(x) * 0.125f;
    // 11-bit grid index of group g: qs[g] | (qh[g / 4] >> 3 (g % 4) & 7) << 8; qh: 3-bit scale at 12, delta sign at 15
    const __m512i qh = _mm512_castsi128_si512(ld128(x + 34));
    const __m512i rep = _mm512_permutexvar_epi16(_mm512_srli_epi16(iota16(), 2), qh);
    const __m512i hi = _mm512_and_si512(_mm512_srlv_epi16(rep, _mm512_set1_epi64(0x0009000600030000)), _mm512_set1_epi16(7));
    alignas(64) uint16_t idx[32];
    _mm512_store_si512(idx, _mm512_or_si512(_mm512_cvtepu8_epi16(ld256(x + 2)), _mm512_slli_epi16(hi, 8)));
    const __m512i ls = _mm512_add_epi16(
        _mm512_slli_epi16(_mm512_and_si512(_mm512_srli_epi16(qh, 12), _mm512_set1_epi16(7)), 1), _mm512_set1_epi16(1));
    // value · 8 / (d ls) = 8g ± 1 = 8u + (-8 ± 1): corr = (-7 or -9) · ls
    const __m512i c = _mm512_sub_epi16(_mm512_set1_epi16(-7), _mm512_slli_epi16(_mm512_srli_epi16(qh, 15), 1));
    s.corr = per16_of_32(_mm512_mullo_epi16(ls, c));
    const __m512i S = _mm512_slli_epi16(ls, 3);
    const __m512i one = _mm512_set1_epi8(1);
    for (int k = 0; k < 4; ++k) {
      s.u[k] = _mm512_add_epi8(load8(iq_tables::kIq1sGrid, idx + 8 * k), one);
      s.sc[k] = chunk_scales32(S, k);
    }
  }
};

struct IQ1_MD {
  static constexpr int kBytes = 56;
  static constexpr bool kSigned = false, kCorr = true, kMin = false;
  static void run(const uint8_t* x, SB& s) {
    const uint16_t s0 = rd16(x + 48), s1 = rd16(x + 50), s2 = rd16(x + 52), s3 = rd16(x + 54);
    s.d = _cvtsh_ss(uint16_t((s0 >> 12) | ((s1 >> 8) & 0x00F0) | ((s2 >> 4) & 0x0F00) | (s3 & 0xF000))) * 0.125f;
    // qh nibble of group g (byte g / 2, low nibble first): 3 grid-index bits, then the delta's sign
    const __m128i qh = ld128(x + 32), m4 = _mm_set1_epi8(15);
    const __m128i lo = _mm_and_si128(qh, m4), hi = _mm_and_si128(_mm_srli_epi16(qh, 4), m4);
    const __m512i nib = _mm512_cvtepu8_epi16(_mm256_set_m128i(_mm_unpackhi_epi8(lo, hi), _mm_unpacklo_epi8(lo, hi)));
    alignas(64) uint16_t idx[32];
    _mm512_store_si512(idx, _mm512_or_si512(_mm512_cvtepu8_epi16(ld256(x)),
                                            _mm512_slli_epi16(_mm512_and_si512(nib, _mm512_set1_epi16(7)), 8)));
    const uint32_t minus = uint32_t(_mm512_test_epi16_mask(nib, _mm512_set1_epi16(8)));  // delta -1/8 per group
    // 16 3-bit scales, one per 16 elements: word j / 4 of the scales, bits 3 (j % 4)
    const __m512i sw = _mm512_castsi128_si512(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(x + 48)));
    const __m512i rep = _mm512_permutexvar_epi16(_mm512_srli_epi16(iota16(), 2), sw);
    const __m512i sf = _mm512_and_si512(_mm512_srlv_epi16(rep, _mm512_set1_epi64(0x0009000600030000)), _mm512_set1_epi16(7));
    const __m512i S = _mm512_add_epi16(_mm512_slli_epi16(sf, 1), _mm512_set1_epi16(1));
    s.corr = _mm512_mullo_epi16(S, _mm512_set1_epi16(-9));
    const __m512i one = _mm512_set1_epi8(1), two = _mm512_set1_epi8(2);
    for (int k = 0; k < 4; ++k) {
      const __m512i g = load8(iq_tables::kIq1sGrid, idx + 8 * k);
      const __m512i u = _mm512_slli_epi16(_mm512_add_epi8(g, one), 3);  // 8 (g + 1), no carry into the next byte
      s.u[k] = _mm512_mask_add_epi64(u, __mmask8(~(minus >> (8 * k))), u, two);  // + 2 where the delta is +1/8
      s.sc[k] = chunk_scales16(S, k);
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
      __m512i part[2] = {zero, zero};  // two chains of dpwssd: half the latency per block
      for (int k = 0; k < 4; ++k) {
        __m512i av = ld512(y + 4 + 64 * k);
        if constexpr (D::kSigned) av = _mm512_mask_sub_epi8(av, s.neg[k], zero, av);
        part[k & 1] = _mm512_dpwssd_epi32(part[k & 1], _mm512_maddubs_epi16(s.u[k], av), s.sc[k]);
      }
      __m512i sumi = _mm512_add_epi32(part[0], part[1]);
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

// NR weight rows (row r at w + r * ws) with one activation row (decode): per row the same operations in the same
// order as k256<D, 1> (bitwise its result); the rows are interleaved block by block (their decode and dot chains
// overlap, one call and one activation block read serve them all).
template <class D, int NR>
void k256r(const uint8_t* w, int64_t ws, const uint8_t* a, int64_t nb, float* out, const uint8_t* pf, int64_t pf_step) {
  __m512 acc[NR];
  __m256 accm[NR];
  for (int r = 0; r < NR; ++r) acc[r] = _mm512_setzero_ps();
  for (int r = 0; r < NR; ++r) accm[r] = _mm256_setzero_ps();
  const __m512i zero = _mm512_setzero_si512();
  for (int64_t b = 0; b < nb; ++b) {
    prefetch_span(pf + b * pf_step, pf_step);
    const uint8_t* y = a + b * int64_t(sizeof(BlockQ8_K));
    const float da = rdf32(y);
    for (int r = 0; r < NR; ++r) {
      SB s;
      D::run(w + r * ws + b * D::kBytes, s);
      __m512i part[2] = {zero, zero};
      for (int k = 0; k < 4; ++k) {
        __m512i av = ld512(y + 4 + 64 * k);
        if constexpr (D::kSigned) av = _mm512_mask_sub_epi8(av, s.neg[k], zero, av);
        part[k & 1] = _mm512_dpwssd_epi32(part[k & 1], _mm512_maddubs_epi16(s.u[k], av), s.sc[k]);
      }
      __m512i sumi = _mm512_add_epi32(part[0], part[1]);
      const __m256i bs = ld256(y + 260);
      if constexpr (D::kCorr) sumi = _mm512_dpwssd_epi32(sumi, _mm512_zextsi256_si512(bs), s.corr);
      acc[r] = _mm512_fmadd_ps(_mm512_set1_ps(s.d * da), _mm512_cvtepi32_ps(sumi), acc[r]);
      if constexpr (D::kMin)
        accm[r] = _mm256_fmadd_ps(_mm256_set1_ps(-s.dmin * da),
                                  _mm256_cvtepi32_ps(_mm256_madd_epi16(bs, _mm512_castsi512_si256(s.mins))), accm[r]);
    }
  }
  for (int r = 0; r < NR; ++r) {
    if constexpr (D::kMin) acc[r] = _mm512_add_ps(acc[r], _mm512_zextps256_ps512(accm[r]));
    out[r] = _mm512_reduce_add_ps(acc[r]);
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
template <class D> struct K32M {
  template <int MB> static void rows(const uint8_t* w, const uint8_t* a, int64_t as, int64_t nb, float* out, int64_t ldo) {
    k32m<D, MB>(w, a, as, nb, out, ldo);
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

// Weight rows in groups of kRowsPerCall, the rest one by one (each row's result is the same either way). Reading
// rows side by side breaks the one sequential stream the hardware prefetchers follow into short ones (a row is a
// few KB), so each group prefetches the group kPrefetchGroups ahead, a slice per block step.
constexpr int kRowsPerCall = 4;
constexpr int kPrefetchGroups = 2;
template <template <class, int> class KR, class D, int Block>
void run_rows(const void* w, int64_t ws, int R, const void* a, int64_t n, float* out) {
  const auto* wp = static_cast<const uint8_t*>(w);
  const auto* ap = static_cast<const uint8_t*>(a);
  const int64_t nb = n / Block;
  const int64_t step = (kRowsPerCall * ws + nb - 1) / nb;  // bytes of the group ahead per block step
  int r = 0;
  for (; r + kRowsPerCall <= R; r += kRowsPerCall)
    KR<D, kRowsPerCall>::go(wp + r * ws, ws, ap, nb, out + r, wp + (r + kPrefetchGroups * kRowsPerCall) * ws, step);
  for (; r < R; ++r) KR<D, 1>::go(wp + r * ws, ws, ap, nb, out + r, wp + (r + 1) * ws, 0);
}
template <class D, int NR> struct R256 {
  static void go(const uint8_t* w, int64_t ws, const uint8_t* a, int64_t nb, float* out, const uint8_t* pf, int64_t st) {
    k256r<D, NR>(w, ws, a, nb, out, pf, st);
  }
};

}  // namespace

QDotRowsFn qdot_rows_avx512(DType wt) {
  switch (wt) {
    case DType::Q2_K: return run_rows<R256, Q2_KD, 256>;
    case DType::Q3_K: return run_rows<R256, Q3_KD, 256>;
    case DType::Q4_K: return run_rows<R256, Q4_KD, 256>;
    case DType::Q5_K: return run_rows<R256, Q5_KD, 256>;
    case DType::Q6_K: return run_rows<R256, Q6_KD, 256>;
    case DType::IQ4_XS: return run_rows<R256, IQ4_XSD, 256>;
    default: return nullptr;
  }
}

QGemmFn qgemm_avx512(DType wt) {
  switch (wt) {
    case DType::Q8_0: return qgemm32<Q8_0D>;
    case DType::Q4_0: return qgemm32<Q4_0D>;
    case DType::Q5_0: return qgemm32<Q5_0D>;
    case DType::IQ4_NL: return qgemm32<IQ4_NLD>;
    default: return nullptr;
  }
}

QDotFn qdot_avx512(DType wt) {
  static const bool bmi2 = [] {
    __builtin_cpu_init();
    return __builtin_cpu_supports("bmi2") != 0;
  }();
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
    case DType::Q4_1: return run<K32M<Q4_1D>, 32>;
    case DType::Q5_1: return run<K32M<Q5_1D>, 32>;
    case DType::IQ2_XXS: return bmi2 ? run<K256<IQ2_XXSD>, 256> : nullptr;
    case DType::IQ2_XS: return bmi2 ? run<K256<IQ2_XSD>, 256> : nullptr;
    case DType::IQ2_S: return run<K256<IQ2_SD>, 256>;
    case DType::IQ3_XXS: return bmi2 ? run<K256<IQ3_XXSD>, 256> : nullptr;
    case DType::IQ3_S: return run<K256<IQ3_SD>, 256>;
    case DType::IQ1_S: return run<K256<IQ1_SD>, 256>;
    case DType::IQ1_M: return run<K256<IQ1_MD>, 256>;
    default: return nullptr;
  }
}

}  // namespace ds::cpu

#pragma GCC pop_options
