// SPDX-License-Identifier: MIT
// AVX2 level of the block-weight dot products (backend/cpu/qdot.h): Q8_0, Q4_0, Q5_0, IQ4_NL (Q8_0 activations) and
// Q2_K, Q3_K, Q4_K, Q5_K, Q6_K, IQ4_XS (Q8_K activations); the other formats fall back to the scalar level.
//
// Each weight block is decoded once into 32-byte vectors of int8 quants and applied to up to 4 activation rows
// (more rows run in passes of 4 over the row, which is then in L1). Products are formed with vpmaddubsw (unsigned x
// signed bytes -> int16 pairs, saturating): unsigned quants multiply the activations directly; signed ones (Q8_0,
// Q4_0, Q5_0, IQ4_NL, IQ4_XS) multiply as |w| x sign(w)·a. No pair can saturate: |w| <= 128 and |a| <= 127 (the
// Q8_0 / Q8_K quantisers never produce -128), so 2·128·127 < 32767. Sums are exact in int32 within a block (or
// sub-block scale group) and scaled once per block in fp32.
// GCC 12 reports its own intrinsic headers' _mm512_undefined_* temporaries as uninitialised (GCC PR 105593).
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>

#include <cstring>

#include "backend/cpu/qdot.h"
#include "base/quant.h"

#pragma GCC push_options
#pragma GCC target("avx2,fma,f16c")

namespace ds::cpu {
namespace {

constexpr int kMaxRows = 4;  // activation rows per pass (16 ymm registers)

inline uint16_t rd16(const uint8_t* p) { uint16_t v; std::memcpy(&v, p, 2); return v; }
inline uint32_t rd32(const uint8_t* p) { uint32_t v; std::memcpy(&v, p, 4); return v; }
inline float h2f(uint16_t h) { return _cvtsh_ss(h); }
inline float h2f(const uint8_t* p) { return _cvtsh_ss(rd16(p)); }
inline float rdf32(const uint8_t* p) { float v; std::memcpy(&v, p, 4); return v; }
inline __m256i ld256(const uint8_t* p) { return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)); }
inline __m128i ld128(const uint8_t* p) { return _mm_loadu_si128(reinterpret_cast<const __m128i*>(p)); }

inline float hsum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

// int16 lanes: the low 8 = a, the high 8 = b (per-lane scales of a 32-element chunk with two 16-element sub-blocks).
inline __m256i scale_pair(int a, int b) { return _mm256_set_m128i(_mm_set1_epi16(int16_t(b)), _mm_set1_epi16(int16_t(a))); }

// 32 bytes: byte i = 0xFF if bit i of x is set.
inline __m256i bits_to_bytes(uint32_t x) {
  const __m256i shuf = _mm256_setr_epi64x(0, 0x0101010101010101, 0x0202020202020202, 0x0303030303030303);
  const __m256i bit = _mm256_set1_epi64x(0x8040201008040201);
  const __m256i v = _mm256_shuffle_epi8(_mm256_set1_epi32(int(x)), shuf);
  return _mm256_cmpeq_epi8(_mm256_and_si256(v, bit), bit);
}

// Nibbles of 16 bytes as 32 bytes: the low nibbles (elements 0..15), then the high ones (16..31).
inline __m256i nibbles32(const uint8_t* p) {
  const __m128i q = ld128(p);
  return _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(q, 4), q), _mm256_set1_epi8(15));
}

inline __m256i iq4nl_table() {
  return _mm256_broadcastsi128_si256(
      _mm_setr_epi8(-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113));
}

// ---- 32-element formats: signed int8 weights of one block --------------------------------------------------------

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
    const __m256i hi = _mm256_and_si256(bits_to_bytes(rd32(b + 2)), _mm256_set1_epi8(16));
    return _mm256_sub_epi8(_mm256_or_si256(nibbles32(b + 6), hi), _mm256_set1_epi8(16));
  }
};
struct IQ4_NLD {
  static constexpr int kBytes = 18;
  static __m256i decode(const uint8_t* b) { return _mm256_shuffle_epi8(iq4nl_table(), nibbles32(b + 2)); }
};

template <class D, int MB>
void k32(const uint8_t* w, const uint8_t* a, int64_t as, int64_t nb, float* out, int64_t ldo) {
  __m256 acc[MB];
  for (int m = 0; m < MB; ++m) acc[m] = _mm256_setzero_ps();
  const __m256i ones = _mm256_set1_epi16(1);
  for (int64_t b = 0; b < nb; ++b) {
    const uint8_t* x = w + b * D::kBytes;
    const __m256i wv = D::decode(x);
    const __m256i wa = _mm256_abs_epi8(wv);  // -128 -> 0x80, read as unsigned 128
    const float dw = h2f(x);
    for (int m = 0; m < MB; ++m) {
      const uint8_t* y = a + m * as + b * int64_t(sizeof(BlockQ8_0));
      const __m256i av = _mm256_sign_epi8(ld256(y + 2), wv);
      const __m256i p = _mm256_madd_epi16(_mm256_maddubs_epi16(wa, av), ones);
      acc[m] = _mm256_fmadd_ps(_mm256_set1_ps(dw * h2f(y)), _mm256_cvtepi32_ps(p), acc[m]);
    }
  }
  for (int m = 0; m < MB; ++m) out[m * ldo] = hsum(acc[m]);
}

// ---- 256-element formats ----------------------------------------------------------------------------------------
// A decoder walks one super-block as 8 chunks of 32 elements, calling put(k, u, s, scv) with the chunk's unsigned
// quants u (|w| for signed formats, whose signs s then go onto the activations) and int16 per-lane scales scv
// (lane i covers elements 2i, 2i+1 of the chunk). The block's value is
//   d * d_a * (Σ_k Σ scv·(u·a)  +  Σ_j corr_j bsum_j)  -  dmin * d_a * Σ_j mins_j bsum_j
// with corr (kCorr: the offset of formats stored as unsigned q - c, = -c·scale) and mins (kMin) per 16 elements.

inline void k4_scales(const uint8_t* s, uint32_t sc[2], uint32_t mn[2]) {
  const uint32_t w0 = rd32(s), w1 = rd32(s + 4), w2 = rd32(s + 8);
  sc[0] = w0 & 0x3f3f3f3f;
  mn[0] = w1 & 0x3f3f3f3f;
  sc[1] = (w2 & 0x0f0f0f0f) | (((w0 >> 6) & 0x03030303) << 4);
  mn[1] = ((w2 >> 4) & 0x0f0f0f0f) | (((w1 >> 6) & 0x03030303) << 4);
}
// 8 mins (bytes) as 16 int16 lanes, each twice (one per 16-element activation sum).
inline __m256i mins_dup(const uint32_t mn[2]) {
  const __m128i v = _mm_cvtepu8_epi16(_mm_set_epi32(0, 0, int(mn[1]), int(mn[0])));
  return _mm256_set_m128i(_mm_unpackhi_epi16(v, v), _mm_unpacklo_epi16(v, v));
}

struct Q4_KD {
  static constexpr int kBytes = 144;
  static constexpr bool kSigned = false, kCorr = false, kMin = true;
  float d, dmin;
  __m256i mins, corr;
  template <class Put>
  void run(const uint8_t* x, Put&& put) {
    d = h2f(x);
    dmin = h2f(x + 2);
    uint32_t sc[2], mn[2];
    k4_scales(x + 4, sc, mn);
    mins = mins_dup(mn);
    uint8_t s[8];
    std::memcpy(s, sc, 8);
    const __m256i m4 = _mm256_set1_epi8(15);
    for (int j = 0; j < 4; ++j) {
      const __m256i q = ld256(x + 16 + 32 * j);
      put(2 * j, _mm256_and_si256(q, m4), q, _mm256_set1_epi16(s[2 * j]));
      put(2 * j + 1, _mm256_and_si256(_mm256_srli_epi16(q, 4), m4), q, _mm256_set1_epi16(s[2 * j + 1]));
    }
  }
};

struct Q5_KD {
  static constexpr int kBytes = 176;
  static constexpr bool kSigned = false, kCorr = false, kMin = true;
  float d, dmin;
  __m256i mins, corr;
  template <class Put>
  void run(const uint8_t* x, Put&& put) {
    d = h2f(x);
    dmin = h2f(x + 2);
    uint32_t sc[2], mn[2];
    k4_scales(x + 4, sc, mn);
    mins = mins_dup(mn);
    uint8_t s[8];
    std::memcpy(s, sc, 8);
    const __m256i m4 = _mm256_set1_epi8(15), b4 = _mm256_set1_epi8(16);
    const __m256i qh = ld256(x + 16);
    auto hb = [&](int k) {
      const __m256i bit = _mm256_set1_epi8(char(1 << k));
      return _mm256_and_si256(_mm256_cmpeq_epi8(_mm256_and_si256(qh, bit), bit), b4);
    };
    for (int j = 0; j < 4; ++j) {
      const __m256i q = ld256(x + 48 + 32 * j);
      put(2 * j, _mm256_or_si256(_mm256_and_si256(q, m4), hb(2 * j)), q, _mm256_set1_epi16(s[2 * j]));
      put(2 * j + 1, _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(q, 4), m4), hb(2 * j + 1)), q,
          _mm256_set1_epi16(s[2 * j + 1]));
    }
  }
};

struct Q6_KD {
  static constexpr int kBytes = 210;
  static constexpr bool kSigned = false, kCorr = true, kMin = false;
  float d, dmin = 0;
  __m256i mins, corr;
  template <class Put>
  void run(const uint8_t* x, Put&& put) {
    const auto* sc = reinterpret_cast<const int8_t*>(x + 192);
    d = h2f(x + 208);
    corr = _mm256_mullo_epi16(_mm256_cvtepi8_epi16(ld128(x + 192)), _mm256_set1_epi16(-32));  // q6 = u - 32
    const __m256i m4 = _mm256_set1_epi8(15), m30 = _mm256_set1_epi8(0x30);
    for (int n = 0; n < 2; ++n) {
      const __m256i l0 = ld256(x + 64 * n), l1 = ld256(x + 64 * n + 32), qh = ld256(x + 128 + 32 * n);
      const int k = 4 * n;
      put(k, _mm256_or_si256(_mm256_and_si256(l0, m4), _mm256_and_si256(_mm256_slli_epi16(qh, 4), m30)), qh,
          scale_pair(sc[2 * k], sc[2 * k + 1]));
      put(k + 1, _mm256_or_si256(_mm256_and_si256(l1, m4), _mm256_and_si256(_mm256_slli_epi16(qh, 2), m30)), qh,
          scale_pair(sc[2 * k + 2], sc[2 * k + 3]));
      put(k + 2,
          _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l0, 4), m4), _mm256_and_si256(qh, m30)), qh,
          scale_pair(sc[2 * k + 4], sc[2 * k + 5]));
      put(k + 3,
          _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l1, 4), m4),
                          _mm256_and_si256(_mm256_srli_epi16(qh, 2), m30)),
          qh, scale_pair(sc[2 * k + 6], sc[2 * k + 7]));
    }
  }
};

// Q3_K's 16 6-bit scales (stored as 4 low bits in bytes 0..7, 2 high bits in bytes 8..11), minus 32.
inline void k3_scales(const uint8_t* s, int8_t out[16]) {
  const uint32_t w0 = rd32(s), w1 = rd32(s + 4), t = rd32(s + 8);
  uint32_t u[4];
  u[0] = (w0 & 0x0f0f0f0f) | (((t >> 0) & 0x03030303) << 4);
  u[1] = (w1 & 0x0f0f0f0f) | (((t >> 2) & 0x03030303) << 4);
  u[2] = ((w0 >> 4) & 0x0f0f0f0f) | (((t >> 4) & 0x03030303) << 4);
  u[3] = ((w1 >> 4) & 0x0f0f0f0f) | (((t >> 6) & 0x03030303) << 4);
  uint8_t b[16];
  std::memcpy(b, u, 16);
  for (int i = 0; i < 16; ++i) out[i] = int8_t(b[i] - 32);
}

struct Q3_KD {
  static constexpr int kBytes = 110;
  static constexpr bool kSigned = false, kCorr = true, kMin = false;
  float d, dmin = 0;
  __m256i mins, corr;
  template <class Put>
  void run(const uint8_t* x, Put&& put) {
    alignas(16) int8_t sc[16];
    k3_scales(x + 96, sc);
    d = h2f(x + 108);
    corr = _mm256_mullo_epi16(_mm256_cvtepi8_epi16(_mm_load_si128(reinterpret_cast<const __m128i*>(sc))),
                              _mm256_set1_epi16(-4));  // q3 = u - 4
    const __m256i hm = ld256(x), m3 = _mm256_set1_epi8(3), b4 = _mm256_set1_epi8(4);
    for (int n = 0; n < 2; ++n) {
      const __m256i q = ld256(x + 32 + 32 * n);
      for (int j = 0; j < 4; ++j) {
        const int k = 4 * n + j;
        const __m256i bit = _mm256_set1_epi8(char(1 << k));
        const __m256i h = _mm256_and_si256(_mm256_cmpeq_epi8(_mm256_and_si256(hm, bit), bit), b4);
        const __m256i lo = _mm256_and_si256(_mm256_srl_epi16(q, _mm_cvtsi32_si128(2 * j)), m3);
        put(k, _mm256_or_si256(lo, h), q, scale_pair(sc[2 * k], sc[2 * k + 1]));
      }
    }
  }
};

struct Q2_KD {
  static constexpr int kBytes = 84;
  static constexpr bool kSigned = false, kCorr = false, kMin = true;
  float d, dmin;
  __m256i mins, corr;
  template <class Put>
  void run(const uint8_t* x, Put&& put) {
    d = h2f(x + 80);
    dmin = h2f(x + 82);
    const __m128i s = ld128(x);
    mins = _mm256_cvtepu8_epi16(_mm_and_si128(_mm_srli_epi16(s, 4), _mm_set1_epi8(15)));
    const __m256i m3 = _mm256_set1_epi8(3);
    for (int n = 0; n < 2; ++n) {
      const __m256i q = ld256(x + 16 + 32 * n);
      for (int j = 0; j < 4; ++j) {
        const int k = 4 * n + j;
        put(k, _mm256_and_si256(_mm256_srl_epi16(q, _mm_cvtsi32_si128(2 * j)), m3), q,
            scale_pair(x[2 * k] & 15, x[2 * k + 1] & 15));
      }
    }
  }
};

inline int iq4xs_scale(const uint8_t* x, int ib) {
  return (((x[4 + ib / 2] >> (4 * (ib % 2))) & 15) | (((rd16(x + 2) >> (2 * ib)) & 3) << 4)) - 32;
}

struct IQ4_XSD {
  static constexpr int kBytes = 136;
  static constexpr bool kSigned = true, kCorr = false, kMin = false;
  float d, dmin = 0;
  __m256i mins, corr;
  template <class Put>
  void run(const uint8_t* x, Put&& put) {
    d = h2f(x);
    const __m256i tab = iq4nl_table();
    for (int k = 0; k < 8; ++k) {
      const __m256i wv = _mm256_shuffle_epi8(tab, nibbles32(x + 8 + 16 * k));
      put(k, _mm256_abs_epi8(wv), wv, _mm256_set1_epi16(int16_t(iq4xs_scale(x, k))));
    }
  }
};

template <class D, int MB>
void k256(const uint8_t* w, const uint8_t* a, int64_t as, int64_t nb, float* out, int64_t ldo) {
  __m256 acc[MB];
  for (int m = 0; m < MB; ++m) acc[m] = _mm256_setzero_ps();
  for (int64_t b = 0; b < nb; ++b) {
    const uint8_t* y[MB];
    for (int m = 0; m < MB; ++m) y[m] = a + m * as + b * int64_t(sizeof(BlockQ8_K));
    __m256i sumi[MB];
    for (int m = 0; m < MB; ++m) sumi[m] = _mm256_setzero_si256();
    D dec;
    dec.run(w + b * D::kBytes, [&](int k, __m256i u, __m256i s, __m256i scv) {
      for (int m = 0; m < MB; ++m) {
        __m256i av = ld256(y[m] + 4 + 32 * k);
        if constexpr (D::kSigned) av = _mm256_sign_epi8(av, s);
        sumi[m] = _mm256_add_epi32(sumi[m], _mm256_madd_epi16(_mm256_maddubs_epi16(u, av), scv));
      }
    });
    for (int m = 0; m < MB; ++m) {
      const float da = rdf32(y[m]);
      const __m256i bs = ld256(y[m] + 260);
      if constexpr (D::kCorr) sumi[m] = _mm256_add_epi32(sumi[m], _mm256_madd_epi16(bs, dec.corr));
      acc[m] = _mm256_fmadd_ps(_mm256_set1_ps(dec.d * da), _mm256_cvtepi32_ps(sumi[m]), acc[m]);
      if constexpr (D::kMin)
        acc[m] = _mm256_fmadd_ps(_mm256_set1_ps(-dec.dmin * da), _mm256_cvtepi32_ps(_mm256_madd_epi16(bs, dec.mins)),
                                 acc[m]);
    }
  }
  for (int m = 0; m < MB; ++m) out[m * ldo] = hsum(acc[m]);
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
  static constexpr RowsFn fns[kMaxRows] = {K::template rows<1>, K::template rows<2>, K::template rows<3>, K::template rows<4>};
  const auto* wp = static_cast<const uint8_t*>(w);
  const auto* ap = static_cast<const uint8_t*>(a);
  for (int m0 = 0; m0 < M; m0 += kMaxRows) {
    const int mb = M - m0 < kMaxRows ? M - m0 : kMaxRows;
    fns[mb - 1](wp, ap + m0 * as, as, n / Block, out + m0 * ldo, ldo);
  }
}

}  // namespace

QDotFn qdot_avx2(DType wt) {
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
