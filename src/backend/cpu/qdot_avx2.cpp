// SPDX-License-Identifier: MIT
// AVX2 level of the block-weight dot products (backend/cpu/qdot.h): every block weight format, Q8_0, Q4_0, Q4_1, Q5_0,
// Q5_1, IQ4_NL (Q8_0 activations) and Q2_K .. Q6_K, IQ4_XS and the grid i-quants IQ1_S, IQ1_M, IQ2_XXS, IQ2_XS, IQ2_S,
// IQ3_XXS, IQ3_S (Q8_K activations).
//
// Each weight block is decoded once into 32-byte vectors of int8 quants and applied to up to 4 activation rows
// (more rows run in passes of 4 over the row, which is then in L1). Products are formed with vpmaddubsw (unsigned x
// signed bytes -> int16 pairs, saturating): unsigned quants multiply the activations directly; signed ones (Q8_0,
// Q4_0, Q5_0, IQ4_NL, IQ4_XS) multiply as |w| x sign(w)·a. No pair can saturate: |w| <= 128 and |a| <= 127 (the
// Q8_0 / Q8_K quantisers never produce -128), so 2·128·127 < 32767. The grid i-quants instead multiply u = 64 ± g
// (<= 126) and take the offset back through the activation block sums (see their section). Sums are exact in int32
// within a block (or sub-block scale group) and scaled once per block in fp32.
// GCC 12 reports its own intrinsic headers' _mm512_undefined_* temporaries as uninitialised (GCC PR 105593).
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>

#include <cstring>

#include "backend/cpu/qdot.h"
#include "base/quant.h"
#include "base/quant_tables.h"

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

// ---- 32-element formats with a min (Q4_1, Q5_1): unsigned quants u, value = d * u + m --------------------------
// Per activation row: d_w * d_a * Σ u a + m_w * d_a * Σ a (u <= 31 against |a| <= 127: no vpmaddubsw saturation).

struct Q4_1D {
  static constexpr int kBytes = 20;
  static __m256i decode(const uint8_t* b) { return nibbles32(b + 4); }
};
struct Q5_1D {
  static constexpr int kBytes = 24;
  static __m256i decode(const uint8_t* b) {
    return _mm256_or_si256(nibbles32(b + 8), _mm256_and_si256(bits_to_bytes(rd32(b + 4)), _mm256_set1_epi8(16)));
  }
};

template <class D, int MB>
void k32m(const uint8_t* w, const uint8_t* a, int64_t as, int64_t nb, float* out, int64_t ldo) {
  __m256 acc[MB];
  for (int m = 0; m < MB; ++m) acc[m] = _mm256_setzero_ps();
  const __m256i ones16 = _mm256_set1_epi16(1), ones8 = _mm256_set1_epi8(1);
  for (int64_t b = 0; b < nb; ++b) {
    const uint8_t* x = w + b * D::kBytes;
    const __m256i u = D::decode(x);
    const float dw = h2f(x), mw = h2f(x + 2);
    for (int m = 0; m < MB; ++m) {
      const uint8_t* y = a + m * as + b * int64_t(sizeof(BlockQ8_0));
      const __m256i av = ld256(y + 2);
      const __m256i p = _mm256_madd_epi16(_mm256_maddubs_epi16(u, av), ones16);
      const __m256i q = _mm256_madd_epi16(_mm256_maddubs_epi16(ones8, av), ones16);
      const float da = h2f(y);
      acc[m] = _mm256_fmadd_ps(_mm256_set1_ps(dw * da), _mm256_cvtepi32_ps(p), acc[m]);
      acc[m] = _mm256_fmadd_ps(_mm256_set1_ps(mw * da), _mm256_cvtepi32_ps(q), acc[m]);
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

// ---- grid i-quants -----------------------------------------------------------------------------------------------
// A grid i-quant's weight is ±level, the levels read from grid entries of 8 (or 4) values (base/quant_tables.h) with
// scalar loads, 4 (or 8) per 32 elements. Signed values w = ±g (g <= 62) go to vpmaddubsw as u = w + 64 (in [2, 126]:
// no pair saturates against |a| <= 127), the offset coming back through the bsums: corr = -64 · ls per 16 elements.
// The signs: stored bytes (IQ2_S, IQ3_S) or 7-bit indices into ggml's ksigns_iq2xs whose 8th bit is the parity of
// the 7, computed for a whole super-block in one ymm. IQ1_S / IQ1_M (values -1, 0, 1) fold their delta (±1/8 of the
// sub-block scale) into integers, as the avx512 level does (backend/cpu/qdot_avx512.cpp):
//   IQ1_S: u = g + 1, scale 8 · ls, corr = (-8 ± 1) · ls;   IQ1_M: u = 8 (g + 1) + (1 ± 1), scale ls, corr = -9 · ls.
// d carries the format's power-of-two factor (1/8, 1/4, 1), exact in fp32.

constexpr int kGridOff = 64;

// Bytes with bit 7 clear (in 16-bit lanes): bit 7 := parity of bits 0..6.
inline __m256i with_parity(__m256i v) {
  __m256i p = _mm256_xor_si256(v, _mm256_srli_epi16(v, 4));
  p = _mm256_xor_si256(p, _mm256_srli_epi16(p, 2));
  p = _mm256_xor_si256(p, _mm256_srli_epi16(p, 1));
  return _mm256_or_si256(v, _mm256_slli_epi16(_mm256_and_si256(p, _mm256_set1_epi8(1)), 7));
}
// 8 dwords of 4 x 7-bit sign indices (bits 0..27) -> 8 dwords of 4 sign bytes (bit j of byte l: element 8l + j).
inline __m256i signs7x4(__m256i a) {
  __m256i v = _mm256_and_si256(a, _mm256_set1_epi32(0x7F));
  v = _mm256_or_si256(v, _mm256_and_si256(_mm256_slli_epi32(a, 1), _mm256_set1_epi32(0x7F00)));
  v = _mm256_or_si256(v, _mm256_and_si256(_mm256_slli_epi32(a, 2), _mm256_set1_epi32(0x7F0000)));
  v = _mm256_or_si256(v, _mm256_and_si256(_mm256_slli_epi32(a, 3), _mm256_set1_epi32(0x7F000000)));
  return with_parity(v);
}
// 8 dwords -> 16 int16 lanes, each dword's low word twice (a per-32-element value for each 16-element bsum).
inline __m256i dup_words(__m256i v) {
  return _mm256_or_si256(_mm256_and_si256(v, _mm256_set1_epi32(0xFFFF)), _mm256_slli_epi32(v, 16));
}
// 64 ± g for the grid bytes g of 32 elements; m: 0xFF where negative.
inline __m256i offset_signed(__m256i g, __m256i m) {
  return _mm256_add_epi8(_mm256_sub_epi8(_mm256_xor_si256(g, m), m), _mm256_set1_epi8(kGridOff));
}
inline __m256i grid4(const uint64_t* g, int i0, int i1, int i2, int i3) {
  return _mm256_set_epi64x(int64_t(g[i3]), int64_t(g[i2]), int64_t(g[i1]), int64_t(g[i0]));
}
inline __m256i grid4(const uint64_t* g, const uint32_t* i) { return grid4(g, int(i[0]), int(i[1]), int(i[2]), int(i[3])); }
template <class I>
inline __m256i grid8(const uint32_t* g, const I* i) {
  return _mm256_set_epi32(int(g[i[7]]), int(g[i[6]]), int(g[i[5]]), int(g[i[4]]), int(g[i[3]]), int(g[i[2]]),
                          int(g[i[1]]), int(g[i[0]]));
}
// 4-bit scales, two per byte (low nibble first), of 8 bytes at p -> 16 int16 lanes 2s + 1.
inline __m256i odd_scales16(const uint8_t* p) {
  const __m128i b = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(p)), m4 = _mm_set1_epi8(15);
  const __m128i n = _mm_unpacklo_epi8(_mm_and_si128(b, m4), _mm_and_si128(_mm_srli_epi16(b, 4), m4));
  const __m256i w = _mm256_cvtepu8_epi16(n);
  return _mm256_add_epi16(_mm256_add_epi16(w, w), _mm256_set1_epi16(1));
}

// IQ2_XXS / IQ3_XXS: per 32 elements a u32 of 4 x 7-bit sign indices and a 4-bit scale s (top); ls = 2s + 1.
struct XxsAux {
  alignas(32) uint32_t signs[8];
  alignas(32) int32_t ls[8];
};
inline __m256i xxs_aux(__m256i aux, XxsAux& o) {  // returns corr
  _mm256_store_si256(reinterpret_cast<__m256i*>(o.signs), signs7x4(aux));
  const __m256i ls = _mm256_add_epi32(_mm256_slli_epi32(_mm256_srli_epi32(aux, 28), 1), _mm256_set1_epi32(1));
  _mm256_store_si256(reinterpret_cast<__m256i*>(o.ls), ls);
  return dup_words(_mm256_sub_epi32(_mm256_setzero_si256(), _mm256_slli_epi32(ls, 6)));  // -64 ls
}

struct IQ2_XXSD {
  static constexpr int kBytes = 66;
  static constexpr bool kSigned = false, kCorr = true, kMin = false;
  float d, dmin = 0;
  __m256i mins, corr;
  template <class Put>
  void run(const uint8_t* x, Put&& put) {
    d = h2f(x) * 0.125f;
    // per 32 elements: u32 of 4 grid indices, u32 of signs and scale; the odd dwords, in order
    const __m256i A = ld256(x + 2), B = ld256(x + 34);
    const __m256i aux = _mm256_permute4x64_epi64(
        _mm256_castps_si256(_mm256_shuffle_ps(_mm256_castsi256_ps(A), _mm256_castsi256_ps(B), 0xDD)), 0xD8);
    XxsAux o;
    corr = xxs_aux(aux, o);
    for (int ib = 0; ib < 8; ++ib) {
      const uint8_t* g = x + 2 + 8 * ib;
      const __m256i v = grid4(iq_tables::kIq2xxsGrid, g[0], g[1], g[2], g[3]);
      put(ib, offset_signed(v, bits_to_bytes(o.signs[ib])), v, _mm256_set1_epi16(int16_t(o.ls[ib])));
    }
  }
};

struct IQ3_XXSD {
  static constexpr int kBytes = 98;
  static constexpr bool kSigned = false, kCorr = true, kMin = false;
  float d, dmin = 0;
  __m256i mins, corr;
  template <class Put>
  void run(const uint8_t* x, Put&& put) {
    d = h2f(x) * 0.25f;
    XxsAux o;
    corr = xxs_aux(ld256(x + 66), o);
    for (int ib = 0; ib < 8; ++ib) {
      const uint8_t* q = x + 2 + 8 * ib;
      const int i[8] = {q[0], q[1], q[2], q[3], q[4], q[5], q[6], q[7]};
      const __m256i v = grid8(iq_tables::kIq3xxsGrid, i);
      put(ib, offset_signed(v, bits_to_bytes(o.signs[ib])), v, _mm256_set1_epi16(int16_t(o.ls[ib])));
    }
  }
};

struct IQ2_XSD {
  static constexpr int kBytes = 74;
  static constexpr bool kSigned = false, kCorr = true, kMin = false;
  float d, dmin = 0;
  __m256i mins, corr;
  template <class Put>
  void run(const uint8_t* x, Put&& put) {
    d = h2f(x) * 0.125f;
    // 32 x (9-bit grid index | 7-bit sign index << 9): the sign bytes of all 32 groups, in order
    const __m256i s0 = with_parity(_mm256_srli_epi16(ld256(x + 2), 9));
    const __m256i s1 = with_parity(_mm256_srli_epi16(ld256(x + 34), 9));
    alignas(32) uint32_t signs[8];
    _mm256_store_si256(reinterpret_cast<__m256i*>(signs), _mm256_permute4x64_epi64(_mm256_packus_epi16(s0, s1), 0xD8));
    const __m256i S = odd_scales16(x + 66);  // per 16 elements
    corr = _mm256_mullo_epi16(S, _mm256_set1_epi16(-kGridOff));
    alignas(32) int16_t ls[16];
    _mm256_store_si256(reinterpret_cast<__m256i*>(ls), S);
    for (int ib = 0; ib < 8; ++ib) {
      const uint8_t* q = x + 2 + 8 * ib;
      const __m256i v = grid4(iq_tables::kIq2xsGrid, rd16(q) & 511, rd16(q + 2) & 511, rd16(q + 4) & 511, rd16(q + 6) & 511);
      put(ib, offset_signed(v, bits_to_bytes(signs[ib])), v, scale_pair(ls[2 * ib], ls[2 * ib + 1]));
    }
  }
};

struct IQ2_SD {
  static constexpr int kBytes = 82;
  static constexpr bool kSigned = false, kCorr = true, kMin = false;
  float d, dmin = 0;
  __m256i mins, corr;
  template <class Put>
  void run(const uint8_t* x, Put&& put) {
    d = h2f(x) * 0.125f;
    const __m256i S = odd_scales16(x + 74);
    corr = _mm256_mullo_epi16(S, _mm256_set1_epi16(-kGridOff));
    alignas(32) int16_t ls[16];
    _mm256_store_si256(reinterpret_cast<__m256i*>(ls), S);
    for (int ib = 0; ib < 8; ++ib) {
      const uint8_t* q = x + 2 + 4 * ib;
      const int h = x[66 + ib];  // 2 high index bits per group
      const __m256i v = grid4(iq_tables::kIq2sGrid, q[0] | ((h << 8) & 0x300), q[1] | ((h << 6) & 0x300),
                              q[2] | ((h << 4) & 0x300), q[3] | ((h << 2) & 0x300));
      put(ib, offset_signed(v, bits_to_bytes(rd32(x + 34 + 4 * ib))), v, scale_pair(ls[2 * ib], ls[2 * ib + 1]));
    }
  }
};

struct IQ3_SD {
  static constexpr int kBytes = 110;
  static constexpr bool kSigned = false, kCorr = true, kMin = false;
  float d, dmin = 0;
  __m256i mins, corr;
  template <class Put>
  void run(const uint8_t* x, Put&& put) {
    d = h2f(x);
    const uint32_t sc = rd32(x + 106);
    int16_t ls[8];
    for (int ib = 0; ib < 8; ++ib) ls[ib] = int16_t(2 * ((sc >> (4 * ib)) & 15) + 1);
    corr = _mm256_mullo_epi16(_mm256_setr_epi16(ls[0], ls[0], ls[1], ls[1], ls[2], ls[2], ls[3], ls[3], ls[4], ls[4],
                                                ls[5], ls[5], ls[6], ls[6], ls[7], ls[7]),
                              _mm256_set1_epi16(-kGridOff));
    // 9-bit grid index of group g (4 values): qs[g] | bit g of qh << 8, 8 groups per ymm
    alignas(32) uint32_t idx[64];
    const __m256i bits = _mm256_setr_epi32(1, 2, 4, 8, 16, 32, 64, 128), b8 = _mm256_set1_epi32(256);
    for (int ib = 0; ib < 8; ++ib) {
      const __m256i h = _mm256_cmpeq_epi32(_mm256_and_si256(_mm256_set1_epi32(x[66 + ib]), bits), bits);
      const __m256i lo = _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(x + 2 + 8 * ib)));
      _mm256_store_si256(reinterpret_cast<__m256i*>(idx + 8 * ib), _mm256_or_si256(lo, _mm256_and_si256(h, b8)));
    }
    for (int ib = 0; ib < 8; ++ib) {
      const __m256i v = grid8(iq_tables::kIq3sGrid, idx + 8 * ib);
      put(ib, offset_signed(v, bits_to_bytes(rd32(x + 74 + 4 * ib))), v, _mm256_set1_epi16(ls[ib]));
    }
  }
};

struct IQ1_SD {
  static constexpr int kBytes = 50;
  static constexpr bool kSigned = false, kCorr = true, kMin = false;
  float d, dmin = 0;
  __m256i mins, corr;
  template <class Put>
  void run(const uint8_t* x, Put&& put) {
    d = h2f(x) * 0.125f;
    // qh[ib]: 3 high index bits per group, a 3-bit scale at 12, the delta's sign at 15
    const __m256i qh = _mm256_cvtepu16_epi32(ld128(x + 34));
    const __m256i ls = _mm256_add_epi32(_mm256_slli_epi32(_mm256_and_si256(_mm256_srli_epi32(qh, 12), _mm256_set1_epi32(7)), 1),
                                        _mm256_set1_epi32(1));
    // value · 8 / (d ls) = 8g ± 1 = 8u + (-8 ± 1): corr = (-7 or -9) · ls
    const __m256i c = _mm256_sub_epi32(_mm256_set1_epi32(-7), _mm256_slli_epi32(_mm256_srli_epi32(qh, 15), 1));
    corr = dup_words(_mm256_mullo_epi32(ls, c));
    alignas(32) int32_t l8[8];
    _mm256_store_si256(reinterpret_cast<__m256i*>(l8), _mm256_slli_epi32(ls, 3));
    const __m256i one = _mm256_set1_epi8(1);
    for (int ib = 0; ib < 8; ++ib) {
      const uint8_t* q = x + 2 + 4 * ib;
      const int h = rd16(x + 34 + 2 * ib);  // 3 high index bits per group
      const __m256i v = grid4(iq_tables::kIq1sGrid, q[0] | ((h << 8) & 0x700), q[1] | ((h << 5) & 0x700),
                              q[2] | ((h << 2) & 0x700), q[3] | ((h >> 1) & 0x700));
      put(ib, _mm256_add_epi8(v, one), v, _mm256_set1_epi16(int16_t(l8[ib])));
    }
  }
};

struct IQ1_MD {
  static constexpr int kBytes = 56;
  static constexpr bool kSigned = false, kCorr = true, kMin = false;
  float d, dmin = 0;
  __m256i mins, corr;
  template <class Put>
  void run(const uint8_t* x, Put&& put) {
    const uint16_t s0 = rd16(x + 48), s1 = rd16(x + 50), s2 = rd16(x + 52), s3 = rd16(x + 54);
    d = h2f(uint16_t((s0 >> 12) | ((s1 >> 8) & 0x00F0) | ((s2 >> 4) & 0x0F00) | (s3 & 0xF000))) * 0.125f;
    // 16 3-bit scales, one per 16 elements: word j / 4 of the scales, bits 3 (j % 4)
    alignas(32) int16_t ls[16];
    for (int j = 0; j < 16; ++j) ls[j] = int16_t(2 * ((rd16(x + 48 + 2 * (j / 4)) >> (3 * (j % 4))) & 7) + 1);
    const __m256i S = _mm256_load_si256(reinterpret_cast<const __m256i*>(ls));
    corr = _mm256_mullo_epi16(S, _mm256_set1_epi16(-9));
    const __m256i one = _mm256_set1_epi8(1), two = _mm256_set1_epi8(2);
    const __m256i bit = _mm256_setr_epi64x(8, 0x80, 0x800, 0x8000);  // the delta sign of group l in qh16 of the sub-block
    for (int ib = 0; ib < 8; ++ib) {
      const uint8_t* q = x + 4 * ib;
      const int h = rd16(x + 32 + 2 * ib);  // per group a nibble: 3 high index bits, then the delta's sign
      const __m256i v = grid4(iq_tables::kIq1sGrid, q[0] | ((h << 8) & 0x700), q[1] | ((h << 4) & 0x700),
                              q[2] | (h & 0x700), q[3] | ((h >> 4) & 0x700));
      const __m256i minus = _mm256_cmpeq_epi64(_mm256_and_si256(_mm256_set1_epi64x(h), bit), bit);
      const __m256i u = _mm256_slli_epi16(_mm256_add_epi8(v, one), 3);  // 8 (g + 1), no carry into the next byte
      put(ib, _mm256_add_epi8(u, _mm256_andnot_si256(minus, two)), v, scale_pair(ls[2 * ib], ls[2 * ib + 1]));
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
    case DType::Q4_1: return run<K32M<Q4_1D>, 32>;
    case DType::Q5_1: return run<K32M<Q5_1D>, 32>;
    case DType::IQ2_XXS: return run<K256<IQ2_XXSD>, 256>;
    case DType::IQ2_XS: return run<K256<IQ2_XSD>, 256>;
    case DType::IQ2_S: return run<K256<IQ2_SD>, 256>;
    case DType::IQ3_XXS: return run<K256<IQ3_XXSD>, 256>;
    case DType::IQ3_S: return run<K256<IQ3_SD>, 256>;
    case DType::IQ1_S: return run<K256<IQ1_SD>, 256>;
    case DType::IQ1_M: return run<K256<IQ1_MD>, 256>;
    default: return nullptr;
  }
}

}  // namespace ds::cpu

#pragma GCC pop_options
