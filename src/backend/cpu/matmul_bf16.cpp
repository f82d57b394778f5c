// SPDX-License-Identifier: MIT
// Precision::Fast matmul on AVX512-BF16: x rounded to bf16 (by the driver), weights BF16 as stored or FP8 converted
// exactly to bf16, products summed in fp32 by vdpbf16ps (32 k per instruction). FP8 block scales are applied per
// 128-column block in fp32: acc += scale * (dot of that block).
// GCC 12 reports its own intrinsic headers' _mm512_undefined_* temporaries as uninitialised (GCC PR 105593).
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>

#include <cstring>

#include "backend/cpu/kernels.h"

#pragma GCC push_options
#pragma GCC target("avx512f,avx512bw,avx512vl,avx512dq,avx512bf16,avx512vbmi,gfni,avx2,fma,f16c")

namespace ds::cpu {
namespace {

constexpr int L = 32;                // bf16 elements per k step
constexpr float kE4m3Mult = 256.0f;  // the FP8 load yields q * 2^-8 (see kernels_impl.inc)

template <DType WT>
constexpr int64_t esz() { return WT == DType::F8_E4M3 ? 1 : 2; }

inline __m512bh as_bh(__m512i v) { __m512bh b; std::memcpy(&b, &v, 64); return b; }
inline __m512i as_i(__m512bh v) { __m512i b; std::memcpy(&b, &v, 64); return b; }

// 32 weights as bf16. FP8: e4m3 -> fp16 bits (q * 2^-8, exact) -> fp32 -> bf16 (exact: <= 4 significant bits).
template <DType WT>
inline __m512bh loadw(const uint8_t* p) {
  if constexpr (WT == DType::BF16) {
    return as_bh(_mm512_loadu_si512(p));
  } else {
    __m512i h = _mm512_cvtepi8_epi16(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
    h = _mm512_and_si512(_mm512_slli_epi16(h, 7), _mm512_set1_epi16(short(0xBF80)));
    const __m512 lo = _mm512_cvtph_ps(_mm512_castsi512_si256(h));
    const __m512 hi = _mm512_cvtph_ps(_mm512_extracti64x4_epi64(h, 1));
    return _mm512_cvtne2ps_pbh(hi, lo);
  }
}

template <int MR, int NR, DType WT>
inline void dp_step(__m512 (&acc)[MR][NR], const uint16_t* x, int64_t ldx, const uint8_t* const (&wp)[NR]) {
  __m512bh xv[MR];
  for (int i = 0; i < MR; ++i) xv[i] = as_bh(_mm512_loadu_si512(x + i * ldx));
  for (int r = 0; r < NR; ++r) {
    const __m512bh wv = loadw<WT>(wp[r]);
    for (int i = 0; i < MR; ++i) acc[i][r] = _mm512_dpbf16_ps(acc[i][r], xv[i], wv);
  }
}

// y[MR, NR] (+)= x[MR, K] · w[NR, K]^T in bf16 products. SC: per-block scales srow[r][k / bc] (bc % 32 == 0);
// mult: the dtype's constant factor (2^8 for FP8, 1 for BF16). Tail through a zero-padded copy; x is zero-padded.
template <int MR, int NR, DType WT, bool SC>
void tile(const uint16_t* x, int64_t ldx, const uint8_t* w, int64_t ldw, int64_t K, const float* const* srow,
          int64_t bc, float mult, float* y, int64_t ldy, bool accum) {
  constexpr int64_t ES = esz<WT>();
  __m512 tot[MR][NR], acc[MR][NR];
  for (int i = 0; i < MR; ++i)
    for (int r = 0; r < NR; ++r) tot[i][r] = acc[i][r] = _mm512_setzero_ps();
  const int64_t step = SC ? bc : K;
  const uint8_t* wp[NR];
  for (int64_t k0 = 0; k0 < K; k0 += step) {
    const int64_t k1 = k0 + step < K ? k0 + step : K;
    int64_t k = k0;
    for (; k + L <= k1; k += L) {
      for (int r = 0; r < NR; ++r) wp[r] = w + r * ldw + k * ES;
      dp_step<MR, NR, WT>(acc, x + k, ldx, wp);
    }
    if (k < k1) {
      alignas(64) uint8_t tb[NR][64];
      for (int r = 0; r < NR; ++r) {
        std::memset(tb[r], 0, sizeof(tb[r]));
        std::memcpy(tb[r], w + r * ldw + k * ES, size_t((k1 - k) * ES));
        wp[r] = tb[r];
      }
      dp_step<MR, NR, WT>(acc, x + k, ldx, wp);
    }
    if constexpr (SC) {
      for (int r = 0; r < NR; ++r) {
        const __m512 s = _mm512_set1_ps(srow[r][k0 / bc] * mult);
        for (int i = 0; i < MR; ++i) {
          tot[i][r] = _mm512_fmadd_ps(acc[i][r], s, tot[i][r]);
          acc[i][r] = _mm512_setzero_ps();
        }
      }
    }
  }
  for (int i = 0; i < MR; ++i)
    for (int r = 0; r < NR; ++r) {
      const float v = SC ? _mm512_reduce_add_ps(tot[i][r]) : _mm512_reduce_add_ps(acc[i][r]) * mult;
      float* yo = y + i * ldy + r;
      *yo = accum ? *yo + v : v;
    }
}

template <int NR, DType WT, bool SC>
void tile_mr(int mr, const uint16_t* x, int64_t ldx, const uint8_t* w, int64_t ldw, int64_t K,
             const float* const* srow, int64_t bc, float mult, float* y, int64_t ldy, bool accum) {
  switch (mr) {
    case 1: tile<1, NR, WT, SC>(x, ldx, w, ldw, K, srow, bc, mult, y, ldy, accum); break;
    case 2: tile<2, NR, WT, SC>(x, ldx, w, ldw, K, srow, bc, mult, y, ldy, accum); break;
    case 3: tile<3, NR, WT, SC>(x, ldx, w, ldw, K, srow, bc, mult, y, ldy, accum); break;
    default: tile<4, NR, WT, SC>(x, ldx, w, ldw, K, srow, bc, mult, y, ldy, accum); break;
  }
}

template <int NR, DType WT, bool SC>
void rows_block(const MmJob& j, const uint16_t* x, int mr, const uint8_t* w, int64_t ldw, int64_t K, float mult,
                int64_t n0, int64_t n1, float* y) {
  const float* srow[NR] = {};
  int64_t n = n0;
  for (; n + NR <= n1; n += NR) {
    if (SC)
      for (int r = 0; r < NR; ++r) srow[r] = j.scale + ((j.row0 + n + r) / j.br) * j.scale_cols;
    tile_mr<NR, WT, SC>(mr, x, j.Kp, w + (n - n0) * ldw, ldw, K, srow, j.bc, mult, y + n, j.ldy, j.accumulate);
  }
  for (; n < n1; ++n) {
    if (SC) srow[0] = j.scale + ((j.row0 + n) / j.br) * j.scale_cols;
    tile_mr<1, WT, SC>(mr, x, j.Kp, w + (n - n0) * ldw, ldw, K, srow, j.bc, mult, y + n, j.ldy, j.accumulate);
  }
}

// All token chunks of 4 over rows [n0, n1). Register budget: SC keeps two accumulator sets (2*MR*NR <= 24).
template <DType WT, bool SC>
void run(const MmJob& j, const uint8_t* w, int64_t ldw, int64_t K, float mult, int64_t n0, int64_t n1) {
  for (int64_t m0 = 0; m0 < j.M; m0 += 4) {
    const int mr = int(j.M - m0 < 4 ? j.M - m0 : 4);
    const uint16_t* x = j.xb + m0 * j.Kp;
    float* y = j.y + m0 * j.ldy;
    if (j.M <= 2) rows_block<SC ? 6 : 8, WT, SC>(j, x, mr, w, ldw, K, mult, n0, n1, y);
    else rows_block<SC ? 3 : 6, WT, SC>(j, x, mr, w, ldw, K, mult, n0, n1, y);
  }
}

// ---- WeightLayout::Rows16 (base/weight.h) on this level: AVX512-BF16 products, AVX512-VBMI FP8 conversion. ----

// FP8 lines are converted to bf16 values of 256 * the e4m3 value (exact: <= 4 significant bits); the tile takes the
// 2^-8 back in its scales (a power of two: the bits are those of converting the value itself).
// Common bytes by two GF(2) affine byte maps (GFNI), one op each: for exponent e >= 1 the bf16 of 256 * value has
// exponent field 128 + e = 0b1000eeee, so its high byte is s,1,0,0,0,e3,e2,e1 and its low byte e0,m2,m1,m0,0,0,0,0,
// both bit selections of the e4m3 byte plus a constant. Zero, subnormals (e = 0) and NaN (0x7F) are not of that
// form: a line holding one (x + 1 has bits 4..6 clear for those, and for e = 1; the block's line bitmap says which,
// base/weight.h, so no line is tested here) goes through byte tables instead:
// vpermi2b looks the magnitude (7 bits) up in the 128-entry tables of the high and low byte, the sign or-ed in.
// Unpacking the low / high 8 bytes of every 16-byte lane gives the pairs (c0, c1) and (c2, c3) of the line's
// 16 rows (the layout places the bytes so).
constexpr float kFp8Unscale = 1.0f / 256.0f;
struct Fp8Tables {
  __m512i hi0, hi1, lo0, lo1;
  Fp8Tables() {
    alignas(64) uint8_t hi[128], lo[128];
    for (int m = 0; m < 128; ++m) {
      const uint16_t b = f32_to_bf16(256.0f * fp8_e4m3_to_f32(uint8_t(m)));
      hi[m] = uint8_t(b >> 8);
      lo[m] = uint8_t(b & 0xff);
    }
    hi0 = _mm512_load_si512(hi); hi1 = _mm512_load_si512(hi + 64);
    lo0 = _mm512_load_si512(lo); lo1 = _mm512_load_si512(lo + 64);
  }
};

// The affine maps' matrices: byte 7 - i of the qword selects the input bits whose parity is output bit i.
constexpr long long kAffHi = 0x1020400000000080LL;  // out7 = x7 (sign), out2..0 = x6..x4 (e3..e1); constant 0x40
constexpr long long kAffLo = 0x0000000001020408LL;  // out7 = x3 (e0), out6..4 = x2..x0 (m)

// `ordinary`: the line's bit in its block's bitmap.
inline void fp8_pairs(const uint8_t* line, bool ordinary, const Fp8Tables& t, __m512i& a, __m512i& b) {
  const __m512i x = _mm512_loadu_si512(line);
  __m512i hi, lo;
  if (__builtin_expect(ordinary, 1)) {
    hi = _mm512_gf2p8affine_epi64_epi8(x, _mm512_set1_epi64(kAffHi), 0x40);
    lo = _mm512_gf2p8affine_epi64_epi8(x, _mm512_set1_epi64(kAffLo), 0);
  } else {
    hi = _mm512_permutex2var_epi8(t.hi0, x, t.hi1);
    lo = _mm512_permutex2var_epi8(t.lo0, x, t.lo1);
    hi = _mm512_ternarylogic_epi32(hi, x, _mm512_set1_epi8(char(0x80)), 0xF8);  // hi | (x & 0x80)
  }
  a = _mm512_unpacklo_epi8(lo, hi);
  b = _mm512_unpackhi_epi8(lo, hi);
}

inline __m512 pair_lo(__m512i v) { return _mm512_castsi512_ps(_mm512_slli_epi32(v, 16)); }
inline __m512 pair_hi(__m512i v) { return _mm512_castsi512_ps(_mm512_and_si512(v, _mm512_set1_epi32(int(0xffff0000u)))); }

// Decode prefetch distance in 64-byte lines per block stream: 1 KiB ahead. On the 8-layer V2-Lite FP8 shape
// (bench --dtype fp8 --profile) the MoE's decode time went 498-531 -> 449-462 ms per 64 steps with 16; 8 was
// no better than none, 24 and 32 no better than 16.
constexpr int64_t kPrefetchLines = 16;

// One tile: tokens [MR] x blocks [NB] of 16 rows over all columns. BF16P: bf16 products (vdpbf16ps on x pairs),
// else fp32 products (FMA on broadcast x). SC: FP8 block scales per bc-wide column block. Every output is one chain
// over the columns in ascending order, the same for every M.
template <DType WT, bool BF16P, int MR, int NB, bool SC>
void r16_tile(const MmJob& j, int64_t m0, int mr, const uint8_t* w, int64_t bb, int64_t n, int64_t nvalid,
              const Fp8Tables& tab) {
  constexpr int G = WT == DType::BF16 ? 2 : 4;
  __m512 acc[MR][NB], t[SC ? MR : 1][SC ? NB : 1];
  for (int m = 0; m < MR; ++m)
    for (int b = 0; b < NB; ++b) acc[m][b] = _mm512_setzero_ps();
  const int64_t lines = (j.K + G - 1) / G, step = SC ? j.bc / G : lines;
  const float* xf = j.xp + m0 * j.Kp;
  const uint16_t* xh = j.xb + m0 * j.Kp;
  const float* srow[NB];  // SC: each block's row of the scale grid, walked one column block per step
  if constexpr (SC)
    for (int b = 0; b < NB; ++b) srow[b] = j.scale + ((j.row0 + n + 16 * b) / j.br) * j.scale_cols;
  const uint8_t* bits[NB];  // FP8: each block's line bitmap (base/weight.h)
  if constexpr (WT == DType::F8_E4M3)
    for (int b = 0; b < NB; ++b) bits[b] = w + b * bb + lines * 64;
  for (int64_t l0 = 0, sb = 0; l0 < lines; l0 += step, ++sb) {
    const int64_t l1 = l0 + step < lines ? l0 + step : lines;
    if constexpr (SC)
      for (int m = 0; m < MR; ++m)
        for (int b = 0; b < NB; ++b) t[m][b] = _mm512_setzero_ps();
    for (int64_t l = l0; l < l1; ++l) {
      __m512i pv[NB][G / 2];  // bf16 pair vectors: columns (c, c+1) [, (c+2, c+3)] of 16 rows
      if constexpr (MR <= 2)  // decode: each block's stream fetched kPrefetchLines ahead (the line's compute hides it)
        for (int b = 0; b < NB; ++b)
          _mm_prefetch(reinterpret_cast<const char*>(w + b * bb + (l + kPrefetchLines) * 64), _MM_HINT_T0);
      for (int b = 0; b < NB; ++b) {
        const uint8_t* line = w + b * bb + l * 64;
        const bool ordinary = WT == DType::F8_E4M3 && ((bits[b][l >> 3] >> (l & 7)) & 1);
        if constexpr (WT == DType::BF16) pv[b][0] = _mm512_loadu_si512(line);
        else fp8_pairs(line, ordinary, tab, pv[b][0], pv[b][G / 2 - 1]);
      }
      for (int h = 0; h < G / 2; ++h)
        for (int m = 0; m < MR; ++m) {
          const int64_t c = l * G + 2 * h;
          if constexpr (BF16P) {
            uint32_t pair;
            std::memcpy(&pair, xh + m * j.Kp + c, 4);
            const __m512bh xv = as_bh(_mm512_set1_epi32(int(pair)));
            for (int b = 0; b < NB; ++b) {
              if constexpr (SC) t[m][b] = _mm512_dpbf16_ps(t[m][b], xv, as_bh(pv[b][h]));
              else acc[m][b] = _mm512_dpbf16_ps(acc[m][b], xv, as_bh(pv[b][h]));
            }
          } else {
            const __m512 x0 = _mm512_set1_ps(xf[m * j.Kp + c]), x1 = _mm512_set1_ps(xf[m * j.Kp + c + 1]);
            for (int b = 0; b < NB; ++b) {
              if constexpr (SC) t[m][b] = _mm512_fmadd_ps(x0, pair_lo(pv[b][h]), t[m][b]);
              else acc[m][b] = _mm512_fmadd_ps(x0, pair_lo(pv[b][h]), acc[m][b]);
            }
            for (int b = 0; b < NB; ++b) {
              if constexpr (SC) t[m][b] = _mm512_fmadd_ps(x1, pair_hi(pv[b][h]), t[m][b]);
              else acc[m][b] = _mm512_fmadd_ps(x1, pair_hi(pv[b][h]), acc[m][b]);
            }
          }
        }
    }
    if constexpr (SC)
      for (int b = 0; b < NB; ++b) {
        const __m512 s = _mm512_set1_ps(srow[b][sb] * kFp8Unscale);
        for (int m = 0; m < MR; ++m) acc[m][b] = _mm512_fmadd_ps(t[m][b], s, acc[m][b]);
      }
  }
  for (int m = 0; m < mr; ++m)
    for (int b = 0; b < NB; ++b) {
      const int64_t r = 16 * b;
      const int nr = int(nvalid - r < 16 ? nvalid - r : 16);
      if (nr <= 0) continue;
      const __mmask16 k = __mmask16((1u << nr) - 1);
      float* yo = j.y + (m0 + m) * j.ldy + n + r;
      __m512 o = acc[m][b];
      if constexpr (WT == DType::F8_E4M3 && !SC) o = _mm512_mul_ps(o, _mm512_set1_ps(kFp8Unscale));
      if (j.accumulate) o = _mm512_add_ps(_mm512_maskz_loadu_ps(k, yo), o);
      _mm512_mask_storeu_ps(yo, k, o);
    }
}

template <DType WT, bool BF16P, int MR, int NBX, bool SC>
void r16_blocks(const MmJob& j, const uint8_t* wg, int64_t bb, int64_t n, int64_t nvalid, const Fp8Tables& tab) {
  for (int64_t m0 = 0; m0 < j.M; m0 += MR) {
    const int mr = int(j.M - m0 < MR ? j.M - m0 : MR);
    // A tile of exactly mr tokens: never read x rows past M.
    if (mr == MR) r16_tile<WT, BF16P, MR, NBX, SC>(j, m0, mr, wg, bb, n, nvalid, tab);
    else if (mr == 1) r16_tile<WT, BF16P, 1, NBX, SC>(j, m0, mr, wg, bb, n, nvalid, tab);
    else if (mr == 2) { if constexpr (MR > 2) r16_tile<WT, BF16P, 2, NBX, SC>(j, m0, mr, wg, bb, n, nvalid, tab); }
    else if (mr == 3) { if constexpr (MR > 3) r16_tile<WT, BF16P, 3, NBX, SC>(j, m0, mr, wg, bb, n, nvalid, tab); }
    else if (mr == 4) { if constexpr (MR > 4) r16_tile<WT, BF16P, 4, NBX, SC>(j, m0, mr, wg, bb, n, nvalid, tab); }
    else if (mr == 5) { if constexpr (MR > 5) r16_tile<WT, BF16P, 5, NBX, SC>(j, m0, mr, wg, bb, n, nvalid, tab); }
  }
}

// Rows [n0, n1) (n0 a multiple of 16): groups of NB blocks stay cache-hot while every token tile passes over them.
template <DType WT, bool BF16P, bool SC, int MR, int NB>
void r16_rows(const MmJob& j, int64_t n0, int64_t n1) {
  static const Fp8Tables tab;
  const int64_t bb = rows16_block_bytes(WT, j.K), blocks = (n1 - n0 + 15) / 16;
  const uint8_t* w = static_cast<const uint8_t*>(j.w);
  int64_t b = 0;
  for (; b + NB <= blocks; b += NB) {
    const int64_t n = n0 + 16 * b;
    r16_blocks<WT, BF16P, MR, NB, SC>(j, w + (n / 16) * bb, bb, n, std::min<int64_t>(n1 - n, 16 * NB), tab);
  }
  for (; b < blocks; ++b) {
    const int64_t n = n0 + 16 * b;
    r16_blocks<WT, BF16P, MR, 1, SC>(j, w + (n / 16) * bb, bb, n, std::min<int64_t>(n1 - n, 16), tab);
  }
}

// Tile shapes. Registers: MR x NB accumulators (twice with SC), NB x G/2 pair vectors, 4 FP8 tables, x. Decode
// (M <= 2) takes 4 blocks at once: every output's chain is sequential over the columns, so independent blocks are
// what hides the instruction latency and keeps enough memory streams in flight.
template <DType WT, bool BF16P, bool SC>
void r16_shape(const MmJob& j, int64_t n0, int64_t n1) {
  if (j.M <= 2) {
    constexpr int NB = 4;
    r16_rows<WT, BF16P, SC, 2, NB>(j, n0, n1);
  } else {
    constexpr int NB = WT == DType::BF16 ? 4 : 2;
    constexpr int MR = WT == DType::BF16 ? (SC ? 3 : 6) : 4;
    r16_rows<WT, BF16P, SC, MR, NB>(j, n0, n1);
  }
}

template <bool BF16P>
void r16_run(const MmJob& j, int64_t n0, int64_t n1) {
  if (j.wt == DType::BF16) r16_shape<DType::BF16, BF16P, false>(j, n0, n1);
  else if (j.scale) r16_shape<DType::F8_E4M3, BF16P, true>(j, n0, n1);
  else r16_shape<DType::F8_E4M3, BF16P, false>(j, n0, n1);
}

}  // namespace

void mm_r16_bf16_avx512bf16(const MmJob& j, int64_t n0, int64_t n1, void*) { r16_run<true>(j, n0, n1); }

void mm_r16_f32_avx512vbmi(const MmJob& j, int64_t n0, int64_t n1, void* scratch) {
  if (j.wt == DType::BF16) return kernels_avx512().mm_r16_f32(j, n0, n1, scratch);  // no conversion to speed up
  r16_run<false>(j, n0, n1);
}

void mm_bf16_rows_avx512bf16(const MmJob& j, int64_t n0, int64_t n1, void* scratch) {
  const bool fp8 = j.wt == DType::F8_E4M3;
  const bool sc = fp8 && j.scale;
  const float mult = fp8 ? kE4m3Mult : 1.0f;
  const uint8_t* w = static_cast<const uint8_t*>(j.w);
  if (!j.prefill) {
    // Decode: stream raw rows in groups that stay cache-hot across the token chunks.
    const int64_t ldw = j.K * (fp8 ? 1 : 2);
    for (int64_t g0 = n0; g0 < n1; g0 += 48) {
      const int64_t g1 = g0 + 48 < n1 ? g0 + 48 : n1;
      const uint8_t* wg = w + g0 * ldw;
      if (!fp8) run<DType::BF16, false>(j, wg, ldw, j.K, mult, g0, g1);
      else if (sc) run<DType::F8_E4M3, true>(j, wg, ldw, j.K, mult, g0, g1);
      else run<DType::F8_E4M3, false>(j, wg, ldw, j.K, mult, g0, g1);
    }
    return;
  }
  // Prefill: rows [n0, n1) as a zero-padded bf16 panel [n1 - n0, Kp] (FP8 unscaled: q * 2^-8), reused over all M.
  uint16_t* panel = static_cast<uint16_t*>(scratch);
  for (int64_t n = n0; n < n1; ++n) {
    uint16_t* out = panel + (n - n0) * j.Kp;
    if (!fp8) {
      std::memcpy(out, w + n * j.K * 2, size_t(j.K) * 2);
    } else {
      const uint8_t* row = w + n * j.K;
      int64_t k = 0;
      for (; k + L <= j.K; k += L) _mm512_storeu_si512(out + k, as_i(loadw<DType::F8_E4M3>(row + k)));
      if (k < j.K) {
        alignas(64) uint8_t tb[64] = {};
        std::memcpy(tb, row + k, size_t(j.K - k));
        const __m512bh v = loadw<DType::F8_E4M3>(tb);
        alignas(64) uint16_t tmp[32];
        _mm512_store_si512(tmp, as_i(v));
        std::memcpy(out + k, tmp, size_t(j.K - k) * 2);
      }
    }
    std::memset(out + j.K, 0, size_t(j.Kp - j.K) * 2);
  }
  const uint8_t* pw = reinterpret_cast<const uint8_t*>(panel);
  if (sc) run<DType::BF16, true>(j, pw, j.Kp * 2, j.Kp, mult, n0, n1);
  else run<DType::BF16, false>(j, pw, j.Kp * 2, j.Kp, mult, n0, n1);
}

}  // namespace ds::cpu

#pragma GCC pop_options
