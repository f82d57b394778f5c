// SPDX-License-Identifier: MIT
// AVX-512 (F/BW/VL/DQ) level of the fp32-activation block-weight dot products (backend/cpu/qfdot.h): Q8_0, Q4_0,
// Q4_1, Q5_0, Q5_1, IQ4_NL, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K, IQ4_XS.
//
// A decoder turns one weight block into zmm vectors of 16 dequantised fp32 weights, in element order, and hands each
// to the driver, which multiplies it into up to 8 activation rows (more rows run in further passes over the weight
// row, which is then in cache) with 2 independent accumulators per row, whatever the number of rows, so that a row's
// result is bitwise the same in any M (batched decode equals single-sequence decode) and the FMA latency does not
// serialise a pass. What a block's decode needs besides its quants (sub-block scales, Q6_K's
// assembled 6-bit quants) is prepared one block ahead (State, prep), off the dependency chain of the block in flight.
//
// Most formats never convert an integer to float: their quants index a 16-float table (vpermps reads the low 4 bits of
// each int32 index, so a zero-extended byte selects its low nibble with no mask) that already holds the dequantised
// values of the block or sub-block, table[k] = d·k − m, built with one FMA per (sub-)block: the same single rounding
// of the exact d·q − m as base/quant.cpp (d·q is exact). That folds the scale and the min into the lookup, one
// instruction per 16 weights, where the factored d·Σ x·q − m·Σ x needs a conversion, an extra add for Σ x and a
// scaling per sub-block. A fifth quant bit adds 16·d under a write mask (Q5_0, Q5_1, Q5_K); the 2-bit formats (Q2_K,
// Q3_K) pack the 4-entry tables of four 16-element sub-blocks into one and OR the sub-block number into the index.
// Q8_0 and Q6_K (8 and 6 bits: no 16-entry table) convert int8 -> fp32; Q8_0 applies d once per block and row
// (d · Σ q·x), Q6_K multiplies by the 16-element sub-block's scale.
//
// Measured on Zen 4 (512-bit ops double-pumped): at M = 1 every 16 weights cost one 64-byte load of x and one FMA, and
// the kernels are bound by loads and shuffles (vpermps, vpmovzxbd, lane broadcasts) rather than by the FMA; so
// per-sub-block values come from memory broadcasts ({1to16}) where a shuffle would otherwise be spent.
// GCC 12 reports its own intrinsic headers' _mm512_undefined_* temporaries as uninitialised (GCC PR 105593).
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>

#include <cstdint>
#include <cstring>
#include <type_traits>
#include <utility>

#include "backend/cpu/qfdot.h"

#pragma GCC push_options
#pragma GCC target("avx512f,avx512bw,avx512vl,avx512dq,avx2,fma,f16c,bmi2")

namespace ds::cpu {
namespace {

#define QF_INLINE inline __attribute__((always_inline))
#define QF_LAMBDA __attribute__((always_inline))

template <int K>
using IC = std::integral_constant<int, K>;

// f(IC<0>), ..., f(IC<N-1>), unrolled.
template <int N, class F>
QF_INLINE void unroll(F&& f) {
  [&]<int... I>(std::integer_sequence<int, I...>) { (f(IC<I>{}), ...); }(std::make_integer_sequence<int, N>{});
}

QF_INLINE uint16_t rd16(const uint8_t* p) { uint16_t v; std::memcpy(&v, p, 2); return v; }
QF_INLINE uint32_t rd32(const uint8_t* p) { uint32_t v; std::memcpy(&v, p, 4); return v; }
QF_INLINE float h2f(const uint8_t* p) { return _cvtsh_ss(rd16(p)); }
QF_INLINE __m512 bcast_h(const uint8_t* p) { return _mm512_set1_ps(h2f(p)); }
QF_INLINE __m128i ld128(const uint8_t* p) { return _mm_loadu_si128(reinterpret_cast<const __m128i*>(p)); }
QF_INLINE __m256i ld256(const uint8_t* p) { return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)); }
QF_INLINE __m512i ld512(const uint8_t* p) { return _mm512_loadu_si512(p); }
// 16 bytes zero-extended to int32 lanes.
QF_INLINE __m512i u8x16(const uint8_t* p) { return _mm512_cvtepu8_epi32(ld128(p)); }
// Lane j of v in every lane.
QF_INLINE __m512 lane(__m512 v, int j) { return _mm512_permutexvar_ps(_mm512_set1_epi32(j), v); }
// table[idx & 15] per lane.
QF_INLINE __m512 look(__m512i idx, __m512 table) { return _mm512_permutexvar_ps(idx, table); }
// table[idx & 15] + (bit i of mask ? e : 0): a fifth (or high) quant bit adds a fixed step to the value.
QF_INLINE __m512 look_add(__m512i idx, __m512 table, __mmask16 mask, __m512 e) {
  const __m512 v = _mm512_permutexvar_ps(idx, table);
  return _mm512_mask_add_ps(v, mask, v, e);
}
// bit i of mask ? hi[idx & 15] : lo[idx & 15].
QF_INLINE __m512 look2(__m512i idx, __m512 lo, __m512 hi, __mmask16 mask) {
  return _mm512_mask_permutexvar_ps(_mm512_permutexvar_ps(idx, lo), mask, idx, hi);
}
QF_INLINE __m512 iota() { return _mm512_setr_ps(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15); }

// ---- the driver --------------------------------------------------------------------------------------------------

// R activation rows (row r at x + r * ldx) times nb blocks of D; out[r * ldo] = the dots. A decoder with kScaled
// emits the block's unscaled values and one scale for the whole block (scale(b), in every lane), which the driver
// applies once per block and row: acc += d * Σ_k v_k * x_k.
template <class D, int R>
void rows(const uint8_t* w, const float* x, int64_t ldx, int64_t nb, float* out, int64_t ldo) {
  constexpr int V = D::kScaled ? 1 : D::kBlock / 16;  // accumulator updates per block and row
  constexpr int A = 2;  // accumulators per row: the same for every R, so a row's sum order never depends on M
  constexpr int U = V >= A ? 1 : A / V;               // blocks per step (so that every accumulator is used)
  __m512 acc[R][A];
  unroll<R>([&](auto r) { unroll<A>([&](auto a) { acc[r][a] = _mm512_setzero_ps(); }); });
  const auto step = [&](const uint8_t* wb, const float* xb, const typename D::State& st, auto u) QF_LAMBDA {
    if constexpr (D::kScaled) {
      constexpr int slot = decltype(u)::value % A;
      __m512 t[R];
      D::decode(wb, st, [&](auto k, __m512 v) QF_LAMBDA {
        unroll<R>([&](auto r) {
          const __m512 xv = _mm512_loadu_ps(xb + r * ldx + 16 * decltype(k)::value);
          t[r] = decltype(k)::value == 0 ? _mm512_mul_ps(v, xv) : _mm512_fmadd_ps(v, xv, t[r]);
        });
      });
      const __m512 d = D::scale(wb);
      unroll<R>([&](auto r) { acc[r][slot] = _mm512_fmadd_ps(t[r], d, acc[r][slot]); });
    } else {
      D::decode(wb, st, [&](auto k, __m512 v) QF_LAMBDA {
        constexpr int slot = (decltype(u)::value * V + decltype(k)::value) % A;
        unroll<R>([&](auto r) {
          acc[r][slot] = _mm512_fmadd_ps(v, _mm512_loadu_ps(xb + r * ldx + 16 * decltype(k)::value), acc[r][slot]);
        });
      });
    }
  };
  // The per-block state (scales, tables) is prepared one block ahead, off the critical path of the block in flight.
  constexpr bool kPrep = !std::is_empty_v<typename D::State>;
  typename D::State st[2];
  if (kPrep && nb > 0) D::prep(w, st[0]);
  int64_t b = 0;
  for (; b + U <= nb; b += U)
    unroll<U>([&](auto u) {
      const int64_t bb = b + u;
      if (kPrep && bb + 1 < nb) D::prep(w + (bb + 1) * D::kBytes, st[(bb + 1) & 1]);
      step(w + bb * D::kBytes, x + bb * D::kBlock, st[bb & 1], u);
    });
  for (; b < nb; ++b) {
    if (kPrep && b + 1 < nb) D::prep(w + (b + 1) * D::kBytes, st[(b + 1) & 1]);
    step(w + b * D::kBytes, x + b * D::kBlock, st[b & 1], IC<0>{});
  }
  unroll<R>([&](auto r) {
    __m512 s = acc[r][0];
    unroll<A - 1>([&](auto a) { s = _mm512_add_ps(s, acc[r][a + 1]); });
    out[r * ldo] = _mm512_reduce_add_ps(s);
  });
}

// NW weight rows (row r at w + r * ws) with one activation row (decode): per weight row exactly the operations of
// rows<D, 1> in the same order (bitwise its result); the rows are interleaved step by step, so each x vector is
// loaded once for all of them and their FMA chains overlap.
template <class D, int NW>
void wrows(const uint8_t* w, int64_t ws, const float* x, int64_t nb, float* out, const uint8_t* pf, int64_t pf_step) {
  constexpr int V = D::kScaled ? 1 : D::kBlock / 16;
  constexpr int A = 2;
  constexpr int U = V >= A ? 1 : A / V;
  __m512 acc[NW][A];
  unroll<NW>([&](auto r) { unroll<A>([&](auto a) { acc[r][a] = _mm512_setzero_ps(); }); });
  const auto step = [&](const uint8_t* wb, const float* xb, const typename D::State& st, auto u, auto r) QF_LAMBDA {
    constexpr int R = decltype(r)::value;
    if constexpr (D::kScaled) {
      constexpr int slot = decltype(u)::value % A;
      __m512 t;
      D::decode(wb, st, [&](auto k, __m512 v) QF_LAMBDA {
        const __m512 xv = _mm512_loadu_ps(xb + 16 * decltype(k)::value);
        t = decltype(k)::value == 0 ? _mm512_mul_ps(v, xv) : _mm512_fmadd_ps(v, xv, t);
      });
      acc[R][slot] = _mm512_fmadd_ps(t, D::scale(wb), acc[R][slot]);
    } else {
      D::decode(wb, st, [&](auto k, __m512 v) QF_LAMBDA {
        constexpr int slot = (decltype(u)::value * V + decltype(k)::value) % A;
        acc[R][slot] = _mm512_fmadd_ps(v, _mm512_loadu_ps(xb + 16 * decltype(k)::value), acc[R][slot]);
      });
    }
  };
  constexpr bool kPrep = !std::is_empty_v<typename D::State>;
  typename D::State st[NW][2];
  if (kPrep && nb > 0) unroll<NW>([&](auto r) { D::prep(w + r * ws, st[r][0]); });
  int64_t b = 0;
  for (; b + U <= nb; b += U)
    unroll<U>([&](auto u) {
      const int64_t bb = b + u;
      for (int64_t o = 0; o < pf_step; o += 64) _mm_prefetch(reinterpret_cast<const char*>(pf + bb * pf_step + o), _MM_HINT_T0);
      unroll<NW>([&](auto r) {
        const uint8_t* wr = w + r * ws;
        if (kPrep && bb + 1 < nb) D::prep(wr + (bb + 1) * D::kBytes, st[r][(bb + 1) & 1]);
        step(wr + bb * D::kBytes, x + bb * D::kBlock, st[r][bb & 1], u, r);
      });
    });
  for (; b < nb; ++b)
    unroll<NW>([&](auto r) {
      const uint8_t* wr = w + r * ws;
      if (kPrep && b + 1 < nb) D::prep(wr + (b + 1) * D::kBytes, st[r][(b + 1) & 1]);
      step(wr + b * D::kBytes, x + b * D::kBlock, st[r][b & 1], IC<0>{}, r);
    });
  unroll<NW>([&](auto r) {
    __m512 s = acc[r][0];
    unroll<A - 1>([&](auto a) { s = _mm512_add_ps(s, acc[r][a + 1]); });
    out[r] = _mm512_reduce_add_ps(s);
  });
}

// Weight rows two at a time (the rest one by one). Rows read side by side are short streams the hardware prefetchers
// follow badly, so each pair prefetches the pair two ahead, a slice per block.
template <class D>
void qf_rows(const void* wv, int64_t ws, int R, const float* x, int64_t n, float* out) {
  const auto* w = static_cast<const uint8_t*>(wv);
  const int64_t nb = n / D::kBlock;
  const int64_t step = nb > 0 ? (2 * ws + nb - 1) / nb : 0;
  int r = 0;
  for (; r + 2 <= R; r += 2) wrows<D, 2>(w + r * ws, ws, x, nb, out + r, w + (r + 4) * ws, step);
  for (; r < R; ++r) wrows<D, 1>(w + r * ws, ws, x, nb, out + r, w, 0);
}

template <class D>
void qf(const void* wv, const float* x, int64_t ldx, int M, int64_t n, float* out, int64_t ldo) {
  const auto* w = static_cast<const uint8_t*>(wv);
  const int64_t nb = n / D::kBlock;
  int m = 0;
  for (; M - m >= 8; m += 8) rows<D, 8>(w, x + m * ldx, ldx, nb, out + m * ldo, ldo);
  x += m * ldx;
  out += m * ldo;
  switch (M - m) {
    case 1: rows<D, 1>(w, x, ldx, nb, out, ldo); break;
    case 2: rows<D, 2>(w, x, ldx, nb, out, ldo); break;
    case 3: rows<D, 3>(w, x, ldx, nb, out, ldo); break;
    case 4: rows<D, 4>(w, x, ldx, nb, out, ldo); break;
    case 5: rows<D, 5>(w, x, ldx, nb, out, ldo); break;
    case 6: rows<D, 6>(w, x, ldx, nb, out, ldo); break;
    case 7: rows<D, 7>(w, x, ldx, nb, out, ldo); break;
    default: break;
  }
}

// Decoders without per-block state to prepare ahead.
struct NoState {};
struct Stateless {
  using State = NoState;
  static QF_INLINE void prep(const uint8_t*, NoState&) {}
};

// ---- 32-element formats ------------------------------------------------------------------------------------------
// Q4_0 / IQ4_NL / Q4_1 {f16 d; [f16 m;] u8 qs[16]}: low nibbles are elements 0..15, high nibbles 16..31.
// Q5_0 / Q5_1 {f16 d; [f16 m;] u32 qh; u8 qs[16]}: bit j of qh is the fifth bit of element j.

struct Q8_0 : Stateless {
  static constexpr int kBlock = 32, kBytes = 34;
  static constexpr bool kScaled = true;
  static QF_INLINE __m512 scale(const uint8_t* b) { return _mm512_cvtph_ps(_mm256_set1_epi16(short(rd16(b)))); }
  template <class F>
  static QF_INLINE void decode(const uint8_t* b, const State&, F&& f) {
    f(IC<0>{}, _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(ld128(b + 2))));
    f(IC<1>{}, _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(ld128(b + 18))));
  }
};

// table: the 16 dequantised nibble values; qs: the 16 packed bytes.
template <class F>
QF_INLINE void nibbles16(const uint8_t* qs, __m512 table, F&& f) {
  const __m512i q = u8x16(qs);
  f(IC<0>{}, look(q, table));
  f(IC<1>{}, look(_mm512_srli_epi32(q, 4), table));
}

struct Q4_0 : Stateless {
  static constexpr int kBlock = 32, kBytes = 18;
  static constexpr bool kScaled = false;
  template <class F>
  static QF_INLINE void decode(const uint8_t* b, const State&, F&& f) {
    // (q - 8) * d: an exact product, as in base/quant.cpp.
    nibbles16(b + 2, _mm512_mul_ps(bcast_h(b), _mm512_sub_ps(iota(), _mm512_set1_ps(8))), f);
  }
};

QF_INLINE __m512 iq4nl_values() {
  // ggml's kvalues_iq4nl (base/quant_tables.inc).
  return _mm512_setr_ps(-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113);
}

struct IQ4_NL : Stateless {
  static constexpr int kBlock = 32, kBytes = 18;
  static constexpr bool kScaled = false;
  template <class F>
  static QF_INLINE void decode(const uint8_t* b, const State&, F&& f) {
    nibbles16(b + 2, _mm512_mul_ps(bcast_h(b), iq4nl_values()), f);
  }
};

struct Q4_1 : Stateless {
  static constexpr int kBlock = 32, kBytes = 20;
  static constexpr bool kScaled = false;
  template <class F>
  static QF_INLINE void decode(const uint8_t* b, const State&, F&& f) {
    nibbles16(b + 4, _mm512_fmadd_ps(iota(), bcast_h(b), bcast_h(b + 2)), f);  // q * d + m, one rounding
  }
};

// lo: the values of 5-bit quants 0..15; step: what the fifth bit adds (16 d).
template <class F>
QF_INLINE void nibbles16_5(const uint8_t* qs, uint32_t qh, __m512 lo, __m512 step, F&& f) {
  const __m512i q = u8x16(qs);
  f(IC<0>{}, look_add(q, lo, __mmask16(qh), step));
  f(IC<1>{}, look_add(_mm512_srli_epi32(q, 4), lo, __mmask16(qh >> 16), step));
}

struct Q5_0 : Stateless {
  static constexpr int kBlock = 32, kBytes = 22;
  static constexpr bool kScaled = false;
  template <class F>
  static QF_INLINE void decode(const uint8_t* b, const State&, F&& f) {
    // (q - 16) * d, then + 16 d for the fifth bit: every value exact, as in base/quant.cpp.
    const __m512 d = bcast_h(b);
    nibbles16_5(b + 6, rd32(b + 2), _mm512_mul_ps(d, _mm512_sub_ps(iota(), _mm512_set1_ps(16))),
                _mm512_mul_ps(d, _mm512_set1_ps(16)), f);
  }
};

struct Q5_1 : Stateless {
  static constexpr int kBlock = 32, kBytes = 24;
  static constexpr bool kScaled = false;
  template <class F>
  static QF_INLINE void decode(const uint8_t* b, const State&, F&& f) {
    // q * d + m, and + 16 d for the fifth bit (a second rounding there: within an ulp of base/quant.cpp's single one)
    const __m512 d = bcast_h(b);
    nibbles16_5(b + 8, rd32(b + 4), _mm512_fmadd_ps(iota(), d, bcast_h(b + 2)), _mm512_mul_ps(d, _mm512_set1_ps(16)),
                f);
  }
};

// ---- 256-element formats -----------------------------------------------------------------------------------------

// Q4_K / Q5_K: the 6-bit scales and mins of the 8 sub-blocks of 32 as int32 lanes [sc0..sc7, mn0..mn7].
QF_INLINE __m512i k4_scales(const uint8_t* s) {
  const uint32_t w0 = rd32(s), w1 = rd32(s + 4), w2 = rd32(s + 8);
  const uint32_t sc0 = w0 & 0x3f3f3f3f, mn0 = w1 & 0x3f3f3f3f;
  const uint32_t sc1 = (w2 & 0x0f0f0f0f) | (((w0 >> 6) & 0x03030303) << 4);
  const uint32_t mn1 = ((w2 >> 4) & 0x0f0f0f0f) | (((w1 >> 6) & 0x03030303) << 4);
  return _mm512_cvtepu8_epi32(_mm_setr_epi32(int(sc0), int(sc1), int(mn0), int(mn1)));
}
// Lanes 0..7: d * sc_j, lanes 8..15: dmin * mn_j (both exact, as in base/quant.cpp).
QF_INLINE __m512 k4_dm(const uint8_t* b) {
  const __m512 dd = _mm512_mask_blend_ps(__mmask16(0xFF00), bcast_h(b), bcast_h(b + 2));
  return _mm512_mul_ps(_mm512_cvtepi32_ps(k4_scales(b + 4)), dd);
}

// Q4_K {f16 d; f16 dmin; u8 scales[12]; u8 qs[128]}: chunk c of 64 elements = qs[32c..32c+32): low nibbles are
// sub-block 2c, high nibbles 2c + 1. State: dm = k4_dm. The table of sub-block j takes dl_j by a lane broadcast and
// ml_j from memory ({1to16}), which measured faster than two broadcasts of either kind.
struct Q4_K {
  static constexpr int kBlock = 256, kBytes = 144;
  static constexpr bool kScaled = false;
  struct State { alignas(64) float dm[16]; };
  static QF_INLINE void prep(const uint8_t* b, State& s) { _mm512_store_ps(s.dm, k4_dm(b)); }
  template <class F>
  static QF_INLINE void decode(const uint8_t* b, const State& s, F&& f) {
    const __m512 dm = _mm512_load_ps(s.dm);
    const __m512 k = iota();
    unroll<4>([&](auto c) {
      const __m512 t0 = _mm512_fmsub_ps(k, lane(dm, 2 * c), _mm512_set1_ps(s.dm[8 + 2 * c]));
      const __m512 t1 = _mm512_fmsub_ps(k, lane(dm, 2 * c + 1), _mm512_set1_ps(s.dm[9 + 2 * c]));
      const uint8_t* q = b + 16 + 32 * c;
      const __m512i q0 = u8x16(q), q1 = u8x16(q + 16);
      f(IC<4 * c + 0>{}, look(q0, t0));
      f(IC<4 * c + 1>{}, look(q1, t0));
      f(IC<4 * c + 2>{}, look(_mm512_srli_epi32(q0, 4), t1));
      f(IC<4 * c + 3>{}, look(_mm512_srli_epi32(q1, 4), t1));
    });
  }
};

// Q5_K {f16 d; f16 dmin; u8 scales[12]; u8 qh[32]; u8 qs[128]}: as Q4_K, with the fifth bit of element l of chunk c
// in bit 2c (low nibbles) or 2c + 1 (high nibbles) of qh[l].
struct Q5_K {
  static constexpr int kBlock = 256, kBytes = 176;
  static constexpr bool kScaled = false;
  using State = Q4_K::State;
  static QF_INLINE void prep(const uint8_t* b, State& s) { _mm512_store_ps(s.dm, k4_dm(b)); }
  template <class F>
  static QF_INLINE void decode(const uint8_t* b, const State& s, F&& f) {
    const __m512 dm = _mm512_load_ps(s.dm);
    const __m512 k = iota();
    const __m256i qh = ld256(b + 16);
    unroll<4>([&](auto c) {
      const __m512 d0 = lane(dm, 2 * c), d1 = lane(dm, 2 * c + 1);
      const __m512 t0 = _mm512_fmsub_ps(k, d0, _mm512_set1_ps(s.dm[8 + 2 * c]));
      const __m512 t1 = _mm512_fmsub_ps(k, d1, _mm512_set1_ps(s.dm[9 + 2 * c]));
      const __m512 e0 = _mm512_mul_ps(d0, _mm512_set1_ps(16)), e1 = _mm512_mul_ps(d1, _mm512_set1_ps(16));
      const uint32_t h0 = _mm256_test_epi8_mask(qh, _mm256_set1_epi8(char(1 << (2 * c))));
      const uint32_t h1 = _mm256_test_epi8_mask(qh, _mm256_set1_epi8(char(2 << (2 * c))));
      const uint8_t* q = b + 48 + 32 * c;
      const __m512i q0 = u8x16(q), q1 = u8x16(q + 16);
      // the fifth bit adds 16 * dl (a second rounding: within an ulp of base/quant.cpp's single one)
      f(IC<4 * c + 0>{}, look_add(q0, t0, __mmask16(h0), e0));
      f(IC<4 * c + 1>{}, look_add(q1, t0, __mmask16(h0 >> 16), e0));
      f(IC<4 * c + 2>{}, look_add(_mm512_srli_epi32(q0, 4), t1, __mmask16(h1), e1));
      f(IC<4 * c + 3>{}, look_add(_mm512_srli_epi32(q1, 4), t1, __mmask16(h1 >> 16), e1));
    });
  }
};

// Q6_K {u8 ql[128]; u8 qh[64]; i8 scales[16]; f16 d}: vector k (elements 16k..16k+16) has scale d * scales[k]. Per
// half h (128 elements): elements 0..63 are the low nibbles of ql[64h..64h+64), 64..127 the high nibbles, each with
// 2 high bits from qh[32h + l % 32] at bit 2 * (i / 32) for element i of the half. The state (prepared a block ahead)
// holds the 6-bit quants as bytes q - 32, assembled 64 at a time, and the 16 scales; the decode widens 16 bytes at a
// time, converts and multiplies by the scale broadcast from memory.
struct Q6_K {
  static constexpr int kBlock = 256, kBytes = 210;
  static constexpr bool kScaled = false;
  struct State {
    alignas(64) int8_t q[256];
    alignas(64) float s[16];
  };
  static QF_INLINE void prep(const uint8_t* b, State& st) {
    const __m512i m4 = _mm512_set1_epi8(0x0F), m30 = _mm512_set1_epi8(0x30), o32 = _mm512_set1_epi8(32);
    // per 16-bit lane: shift counts for the low 256 bits / the high 256 bits
    const __m512i shl = _mm512_inserti64x4(_mm512_set1_epi16(4), _mm256_set1_epi16(2), 1);
    const __m512i shr = _mm512_inserti64x4(_mm512_setzero_si512(), _mm256_set1_epi16(2), 1);
    unroll<2>([&](auto h) {
      const __m512i l = ld512(b + 64 * h);
      const __m512i hq = _mm512_broadcast_i64x4(ld256(b + 128 + 32 * h));
      const __m512i hlo = _mm512_and_si512(_mm512_sllv_epi16(hq, shl), m30);
      const __m512i hhi = _mm512_and_si512(_mm512_srlv_epi16(hq, shr), m30);
      // (a & 0x0F) | b, b having only bits 4..5: ternary logic with c = 0x0F selects a where c is set, b elsewhere.
      const __m512i lo = _mm512_ternarylogic_epi32(l, hlo, m4, 0xE4);
      const __m512i hi = _mm512_ternarylogic_epi32(_mm512_srli_epi16(l, 4), hhi, m4, 0xE4);
      _mm512_store_si512(st.q + 128 * h, _mm512_sub_epi8(lo, o32));
      _mm512_store_si512(st.q + 128 * h + 64, _mm512_sub_epi8(hi, o32));
    });
    _mm512_store_ps(st.s, _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(ld128(b + 192))), bcast_h(b + 208)));
  }
  template <class F>
  static QF_INLINE void decode(const uint8_t*, const State& st, F&& f) {
    unroll<16>([&](auto k) {
      const __m512 v = _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(ld128(reinterpret_cast<const uint8_t*>(st.q) + 16 * k)));
      f(k, _mm512_mul_ps(v, _mm512_set1_ps(st.s[k])));  // d * sc exact, one rounding as in base/quant.cpp
    });
  }
};

// Q2_K / Q3_K: 16 sub-blocks of 16 elements with 2-bit quants; vector k = sub-block k, for k = 8 * half +
// 2 * (shift / 2) + part: the bytes q[32 * half + 16 * part + l] >> shift. Four sub-blocks (4g..4g+3) share one
// 16-entry table, entry 4s + u holding the value of quant u in sub-block 4g + s; index = ((byte >> shift) & 3) | 4s.
template <int K>
QF_INLINE __m512i idx2(__m512i q) {  // K = vector number
  constexpr int shift = 2 * ((K % 8) / 2), s = K % 4;
  // (a & b) | c with b = 3, c = 4s
  return _mm512_ternarylogic_epi32(_mm512_srli_epi32(q, shift), _mm512_set1_epi32(3), _mm512_set1_epi32(4 * s), 0xEA);
}
// Per-lane broadcast of sub-block 4g + lane / 4.
QF_INLINE __m512 group4(__m512 v, int g) {
  return _mm512_permutexvar_ps(
      _mm512_add_epi32(_mm512_srli_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15), 2),
                       _mm512_set1_epi32(4 * g)),
      v);
}
QF_INLINE __m512 iota_mod4() { return _mm512_setr_ps(0, 1, 2, 3, 0, 1, 2, 3, 0, 1, 2, 3, 0, 1, 2, 3); }

// Q2_K {u8 scales[16]; u8 qs[64]; f16 d; f16 dmin}: scale byte = (min << 4) | scale; x = (d * sc) * q - dmin * min.
struct Q2_K {
  static constexpr int kBlock = 256, kBytes = 84;
  static constexpr bool kScaled = false;
  struct State { __m512 dl, ml; };
  static QF_INLINE void prep(const uint8_t* b, State& s) {
    const __m512i sb = u8x16(b);
    s.dl = _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_and_si512(sb, _mm512_set1_epi32(15))), bcast_h(b + 80));
    s.ml = _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_srli_epi32(sb, 4)), bcast_h(b + 82));
  }
  template <class F>
  static QF_INLINE void decode(const uint8_t* b, const State& s, F&& f) {
    const __m512 dl = s.dl, ml = s.ml;
    const __m512 u = iota_mod4();
    unroll<2>([&](auto half) {
      const __m512i qa = u8x16(b + 16 + 32 * half), qb = u8x16(b + 32 + 32 * half);
      unroll<2>([&](auto gg) {
        constexpr int g = 2 * half + gg;
        const __m512 t = _mm512_fmsub_ps(u, group4(dl, g), group4(ml, g));
        unroll<4>([&](auto j) {
          constexpr int k = 4 * g + j;
          f(IC<k>{}, look(idx2<k>(k % 2 ? qb : qa), t));
        });
      });
    });
  }
};

// Q3_K {u8 hmask[32]; u8 qs[64]; u8 scales[12]; f16 d}: x = (d * (scale - 32)) * (q2 - (high bit clear ? 4 : 0)),
// the high bit of vector k's element l at bit k / 2 of hmask[16 * (k % 2) + l]; a cleared bit takes the second table.
struct Q3_K {
  static constexpr int kBlock = 256, kBytes = 110;
  static constexpr bool kScaled = false;
  struct State { __m512 dl; };
  static QF_INLINE void prep(const uint8_t* b, State& st) {
    // the 6-bit scales (biased by 32) of the 16 sub-blocks: low 4 bits in byte j % 8 (low nibble for j < 8), high 2
    // bits in byte 8 + j % 4 at bit 2 * (j / 4).
    const uint8_t* s = b + 96;
    uint64_t lo8;
    std::memcpy(&lo8, s, 8);
    const uint32_t hi4 = rd32(s + 8);
    const __m128i lo = _mm_and_si128(_mm_set_epi64x(int64_t(lo8 >> 4), int64_t(lo8)), _mm_set1_epi8(15));
    const __m128i hiv = _mm_setr_epi32(int(hi4), int(hi4 >> 2), int(hi4 >> 4), int(hi4 >> 6));
    const __m128i hb = _mm_slli_epi16(_mm_and_si128(hiv, _mm_set1_epi8(3)), 4);
    const __m128i sc = _mm_sub_epi8(_mm_or_si128(lo, hb), _mm_set1_epi8(32));
    st.dl = _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(sc)), bcast_h(b + 108));
  }
  template <class F>
  static QF_INLINE void decode(const uint8_t* b, const State& st, F&& f) {
    const __m512 dl = st.dl;
    const __m512 u = iota_mod4(), u4 = _mm512_sub_ps(u, _mm512_set1_ps(4));
    const __m256i hm = ld256(b);
    unroll<2>([&](auto half) {
      const __m512i qa = u8x16(b + 32 + 32 * half), qb = u8x16(b + 48 + 32 * half);
      unroll<2>([&](auto gg) {
        constexpr int g = 2 * half + gg;
        const __m512 dg = group4(dl, g);
        // (the tables hold four sub-blocks, so the high bit picks a second table rather than adding one step)
        const __m512 tset = _mm512_mul_ps(u, dg), tclr = _mm512_mul_ps(u4, dg);
        unroll<4>([&](auto j) {
          constexpr int k = 4 * g + j;
          const uint32_t bits = _mm256_test_epi8_mask(hm, _mm256_set1_epi8(char(1 << (k / 2))));
          f(IC<k>{}, look2(idx2<k>(k % 2 ? qb : qa), tclr, tset, __mmask16(bits >> (16 * (k % 2)))));
        });
      });
    });
  }
};

// IQ4_XS {f16 d; u16 scales_h; u8 scales_l[4]; u8 qs[128]}: sub-block ib of 32 has the 6-bit scale ls (low 4 bits
// at nibble ib of scales_l, high 2 at bits 2ib of scales_h), x = (d * (ls - 32)) * kvalues[nibble]; qs[16ib..16ib+16)
// holds its elements 0..15 in the low nibbles and 16..31 in the high ones.
struct IQ4_XS {
  static constexpr int kBlock = 256, kBytes = 136;
  static constexpr bool kScaled = false;
  struct State { alignas(32) float dl[8]; };
  static QF_INLINE void prep(const uint8_t* b, State& st) {
    const __m256i sh = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    const __m256i sl = _mm256_set1_epi32(int(rd32(b + 4))), sh2 = _mm256_set1_epi32(int(rd16(b + 2)));
    const __m256i lo = _mm256_and_si256(_mm256_srlv_epi32(sl, _mm256_slli_epi32(sh, 2)), _mm256_set1_epi32(15));
    const __m256i hi = _mm256_and_si256(_mm256_srlv_epi32(sh2, _mm256_slli_epi32(sh, 1)), _mm256_set1_epi32(3));
    const __m256i ls = _mm256_sub_epi32(_mm256_or_si256(lo, _mm256_slli_epi32(hi, 4)), _mm256_set1_epi32(32));
    _mm256_store_ps(st.dl, _mm256_mul_ps(_mm256_cvtepi32_ps(ls), _mm256_set1_ps(h2f(b))));
  }
  template <class F>
  static QF_INLINE void decode(const uint8_t* b, const State& st, F&& f) {
    const __m512 kv = iq4nl_values();
    unroll<8>([&](auto ib) {
      const __m512 t = _mm512_mul_ps(kv, _mm512_set1_ps(st.dl[ib]));
      nibbles16(b + 8 + 16 * ib, t, [&](auto k, __m512 v) QF_LAMBDA { f(IC<2 * ib + decltype(k)::value>{}, v); });
    });
  }
};

}  // namespace

QFDotRowsFn qfdot_rows_avx512(DType wt) {
  switch (wt) {  // not Q8_0: its one-scale-per-block step measured no faster two rows at a time
    case DType::Q4_0: return qf_rows<Q4_0>;
    case DType::Q4_1: return qf_rows<Q4_1>;
    case DType::Q5_0: return qf_rows<Q5_0>;
    case DType::Q5_1: return qf_rows<Q5_1>;
    case DType::IQ4_NL: return qf_rows<IQ4_NL>;
    case DType::Q2_K: return qf_rows<Q2_K>;
    case DType::Q3_K: return qf_rows<Q3_K>;
    case DType::Q4_K: return qf_rows<Q4_K>;
    case DType::Q5_K: return qf_rows<Q5_K>;
    case DType::Q6_K: return qf_rows<Q6_K>;
    case DType::IQ4_XS: return qf_rows<IQ4_XS>;
    default: return nullptr;
  }
}

QFDotFn qfdot_avx512(DType wt) {
  switch (wt) {
    case DType::Q8_0: return qf<Q8_0>;
    case DType::Q4_0: return qf<Q4_0>;
    case DType::Q4_1: return qf<Q4_1>;
    case DType::Q5_0: return qf<Q5_0>;
    case DType::Q5_1: return qf<Q5_1>;
    case DType::IQ4_NL: return qf<IQ4_NL>;
    case DType::Q2_K: return qf<Q2_K>;
    case DType::Q3_K: return qf<Q3_K>;
    case DType::Q4_K: return qf<Q4_K>;
    case DType::Q5_K: return qf<Q5_K>;
    case DType::Q6_K: return qf<Q6_K>;
    case DType::IQ4_XS: return qf<IQ4_XS>;
    default: return nullptr;
  }
}

}  // namespace ds::cpu

#pragma GCC pop_options
