// SPDX-License-Identifier: MIT
// AVX2 + FMA level of the fp32-activation block-weight dot products (backend/cpu/qfdot.h): Q8_0, Q4_0, Q4_1, Q5_0,
// Q5_1, IQ4_NL, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K, IQ4_XS.
//
// A decoder unpacks one weight block with byte-wide vector operations into its integer quants (int8, offsets and
// IQ4 codebook values applied) and, per group of elements sharing a scale, d and c with value = d·q + c (the single
// rounding of an exact product plus the min, as base/quant.cpp computes it). The driver widens 8 quants at a time,
// converts them to fp32, applies d and c in one FMA and multiplies the 8 weights into up to 4 activation rows (more
// rows run in further passes over the weight row, which is then in cache) with 2 independent accumulators per row
// whatever the number of rows (a row's result is bitwise the same in any M). Q4_K (the common format) skips the byte buffer: it widens its packed nibbles straight from
// the block (one load per 16 weights instead of a store and two loads), which measured ~15% faster.
#include <immintrin.h>

#include <cstdint>
#include <cstring>
#include <type_traits>
#include <utility>

#include "backend/cpu/qfdot.h"

#pragma GCC push_options
#pragma GCC target("avx2,fma,f16c")

namespace ds::cpu {
namespace {

#define QF_INLINE inline __attribute__((always_inline))
#define QF_LAMBDA __attribute__((always_inline))

template <int K>
using IC = std::integral_constant<int, K>;

template <int N, class F>
QF_INLINE void unroll(F&& f) {
  [&]<int... I>(std::integer_sequence<int, I...>) { (f(IC<I>{}), ...); }(std::make_integer_sequence<int, N>{});
}

QF_INLINE uint16_t rd16(const uint8_t* p) { uint16_t v; std::memcpy(&v, p, 2); return v; }
QF_INLINE uint32_t rd32(const uint8_t* p) { uint32_t v; std::memcpy(&v, p, 4); return v; }
QF_INLINE float h2f(const uint8_t* p) { return _cvtsh_ss(rd16(p)); }
QF_INLINE __m128i ld128(const void* p) { return _mm_loadu_si128(static_cast<const __m128i*>(p)); }
QF_INLINE __m256i ld256(const void* p) { return _mm256_loadu_si256(static_cast<const __m256i*>(p)); }
QF_INLINE void st128(void* p, __m128i v) { _mm_storeu_si128(static_cast<__m128i*>(p), v); }
QF_INLINE void st256(void* p, __m256i v) { _mm256_storeu_si256(static_cast<__m256i*>(p), v); }
QF_INLINE __m128i iq4nl_values() {
  return _mm_setr_epi8(-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113);  // ggml's kvalues
}
// Byte i = 0xFF where bit i of x is set.
QF_INLINE __m256i bits_to_bytes(uint32_t x) {
  const __m256i shuf = _mm256_setr_epi64x(0, 0x0101010101010101, 0x0202020202020202, 0x0303030303030303);
  const __m256i bit = _mm256_set1_epi64x(int64_t(0x8040201008040201));
  const __m256i v = _mm256_shuffle_epi8(_mm256_set1_epi32(int(x)), shuf);
  return _mm256_cmpeq_epi8(_mm256_and_si256(v, bit), bit);
}
// Bytes of v with bit `bit` set -> 0xFF, else 0.
QF_INLINE __m256i bit_bytes(__m256i v, int bit) {
  const __m256i m = _mm256_set1_epi8(char(1 << bit));
  return _mm256_cmpeq_epi8(_mm256_and_si256(v, m), m);
}
QF_INLINE __m256i srl8(__m256i v, int s) {  // bytes >> s
  return _mm256_and_si256(_mm256_srli_epi16(v, s), _mm256_set1_epi8(char(0xFF >> s)));
}

// ---- the driver --------------------------------------------------------------------------------------------------
// D: kBlock elements in kBytes bytes. Either kDirect, emit(block, f) calling f(IC<k>, the 8 weights 8k..8k+8), or
// kGroup elements per (d, c), kMin (c != 0), decode(block, q buffer, d, c) returning the block's kBlock int8 quants
// (in the buffer, or in the block itself), which the driver widens, converts and scales 8 at a time.

template <class D, int R>
void rows(const uint8_t* w, const float* x, int64_t ldx, int64_t nb, float* out, int64_t ldo) {
  constexpr int V = D::kBlock / 8;
  constexpr int A = 2;  // the same for every R: a row's sum order never depends on M
  constexpr int U = V >= A ? 1 : A / V;
  constexpr int G = D::kBlock / D::kGroup;
  __m256 acc[R][A];
  unroll<R>([&](auto r) { unroll<A>([&](auto a) { acc[r][a] = _mm256_setzero_ps(); }); });
  const auto step = [&](const uint8_t* wb, const float* xb, auto u) QF_LAMBDA {
    const auto use = [&](auto k, __m256 v) QF_LAMBDA {
      constexpr int slot = (decltype(u)::value * V + decltype(k)::value) % A;
      unroll<R>([&](auto r) {
        acc[r][slot] = _mm256_fmadd_ps(v, _mm256_loadu_ps(xb + r * ldx + 8 * decltype(k)::value), acc[r][slot]);
      });
    };
    if constexpr (D::kDirect) {
      D::emit(wb, use);
    } else {
      alignas(32) int8_t buf[D::kBlock];
      alignas(32) float d[G], c[G];
      const int8_t* q = D::decode(wb, buf, d, c);
      unroll<V>([&](auto k) {
        constexpr int g = 8 * k / D::kGroup;
        const __m256 qf =
            _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(q + 8 * k))));
        use(k, D::kMin ? _mm256_fmadd_ps(qf, _mm256_broadcast_ss(&d[g]), _mm256_broadcast_ss(&c[g]))
                       : _mm256_mul_ps(qf, _mm256_broadcast_ss(&d[g])));
      });
    }
  };
  int64_t b = 0;
  for (; b + U <= nb; b += U)
    unroll<U>([&](auto u) { step(w + (b + u) * D::kBytes, x + (b + u) * D::kBlock, u); });
  for (; b < nb; ++b) step(w + b * D::kBytes, x + b * D::kBlock, IC<0>{});
  unroll<R>([&](auto r) {
    __m256 s = acc[r][0];
    unroll<A - 1>([&](auto a) { s = _mm256_add_ps(s, acc[r][a + 1]); });
    __m128 t = _mm_add_ps(_mm256_castps256_ps128(s), _mm256_extractf128_ps(s, 1));
    t = _mm_add_ps(t, _mm_movehl_ps(t, t));
    out[r * ldo] = _mm_cvtss_f32(_mm_add_ss(t, _mm_movehdup_ps(t)));
  });
}

template <class D>
void qf(const void* wv, const float* x, int64_t ldx, int M, int64_t n, float* out, int64_t ldo) {
  const auto* w = static_cast<const uint8_t*>(wv);
  const int64_t nb = n / D::kBlock;
  int m = 0;
  for (; M - m >= 4; m += 4) rows<D, 4>(w, x + m * ldx, ldx, nb, out + m * ldo, ldo);
  x += m * ldx;
  out += m * ldo;
  switch (M - m) {
    case 1: rows<D, 1>(w, x, ldx, nb, out, ldo); break;
    case 2: rows<D, 2>(w, x, ldx, nb, out, ldo); break;
    case 3: rows<D, 3>(w, x, ldx, nb, out, ldo); break;
    default: break;
  }
}

// ---- 32-element formats ------------------------------------------------------------------------------------------

struct Q8_0 {
  static constexpr int kBlock = 32, kBytes = 34, kGroup = 32;
  static constexpr bool kMin = false;
  static constexpr bool kDirect = false;
  static QF_INLINE const int8_t* decode(const uint8_t* b, int8_t*, float* d, float*) {
    d[0] = h2f(b);
    return reinterpret_cast<const int8_t*>(b + 2);
  }
};

// The 16 packed bytes at p as 32 nibbles: low nibbles (elements 0..15), then high ones (16..31).
QF_INLINE __m256i nibbles32(const uint8_t* p) {
  const __m128i v = ld128(p);
  return _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(v, 4), v), _mm256_set1_epi8(15));
}

struct Q4_0 {
  static constexpr int kBlock = 32, kBytes = 18, kGroup = 32;
  static constexpr bool kMin = false;
  static constexpr bool kDirect = false;
  static QF_INLINE const int8_t* decode(const uint8_t* b, int8_t* q, float* d, float*) {
    d[0] = h2f(b);
    st256(q, _mm256_sub_epi8(nibbles32(b + 2), _mm256_set1_epi8(8)));
    return q;
  }
};

struct IQ4_NL {
  static constexpr int kBlock = 32, kBytes = 18, kGroup = 32;
  static constexpr bool kMin = false;
  static constexpr bool kDirect = false;
  static QF_INLINE const int8_t* decode(const uint8_t* b, int8_t* q, float* d, float*) {
    d[0] = h2f(b);
    const __m128i v = ld128(b + 2), m = _mm_set1_epi8(15);
    st128(q, _mm_shuffle_epi8(iq4nl_values(), _mm_and_si128(v, m)));
    st128(q + 16, _mm_shuffle_epi8(iq4nl_values(), _mm_and_si128(_mm_srli_epi16(v, 4), m)));
    return q;
  }
};

struct Q4_1 {
  static constexpr int kBlock = 32, kBytes = 20, kGroup = 32;
  static constexpr bool kMin = true;
  static constexpr bool kDirect = false;
  static QF_INLINE const int8_t* decode(const uint8_t* b, int8_t* q, float* d, float* c) {
    d[0] = h2f(b);
    c[0] = h2f(b + 2);
    st256(q, nibbles32(b + 4));
    return q;
  }
};

struct Q5_0 {
  static constexpr int kBlock = 32, kBytes = 22, kGroup = 32;
  static constexpr bool kMin = false;
  static constexpr bool kDirect = false;
  static QF_INLINE const int8_t* decode(const uint8_t* b, int8_t* q, float* d, float*) {
    d[0] = h2f(b);
    const __m256i hi = _mm256_and_si256(bits_to_bytes(rd32(b + 2)), _mm256_set1_epi8(16));
    st256(q, _mm256_sub_epi8(_mm256_or_si256(nibbles32(b + 6), hi), _mm256_set1_epi8(16)));
    return q;
  }
};

struct Q5_1 {
  static constexpr int kBlock = 32, kBytes = 24, kGroup = 32;
  static constexpr bool kMin = true;
  static constexpr bool kDirect = false;
  static QF_INLINE const int8_t* decode(const uint8_t* b, int8_t* q, float* d, float* c) {
    d[0] = h2f(b);
    c[0] = h2f(b + 2);
    const __m256i hi = _mm256_and_si256(bits_to_bytes(rd32(b + 4)), _mm256_set1_epi8(16));
    st256(q, _mm256_or_si256(nibbles32(b + 8), hi));
    return q;
  }
};

// ---- 256-element formats (layouts: base/quant.cpp) ---------------------------------------------------------------

// Q4_K / Q5_K: d[j] = d * sc_j, c[j] = -(dmin * mn_j) for the 8 sub-blocks of 32 (ggml's get_scale_min_k4).
QF_INLINE void k4_scales(const uint8_t* b, float* d, float* c) {
  const uint8_t* s = b + 4;
  const uint32_t w0 = rd32(s), w1 = rd32(s + 4), w2 = rd32(s + 8);
  const uint32_t sc0 = w0 & 0x3f3f3f3f, mn0 = w1 & 0x3f3f3f3f;
  const uint32_t sc1 = (w2 & 0x0f0f0f0f) | (((w0 >> 6) & 0x03030303) << 4);
  const uint32_t mn1 = ((w2 >> 4) & 0x0f0f0f0f) | (((w1 >> 6) & 0x03030303) << 4);
  const __m256 sc = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_setr_epi32(int(sc0), int(sc1), 0, 0)));
  const __m256 mn = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_setr_epi32(int(mn0), int(mn1), 0, 0)));
  _mm256_store_ps(d, _mm256_mul_ps(sc, _mm256_set1_ps(h2f(b))));
  _mm256_store_ps(c, _mm256_mul_ps(mn, _mm256_set1_ps(-h2f(b + 2))));
}

// Q4_K: 8 bytes of qs at a time, widened from the block itself (low nibbles: elements 64c + 8i.., high nibbles:
// 64c + 32 + 8i..).
struct Q4_K {
  static constexpr int kBlock = 256, kBytes = 144, kGroup = 256;  // (kGroup: unused by a direct decoder)
  static constexpr bool kDirect = true;
  template <class F>
  static QF_INLINE void emit(const uint8_t* b, F&& f) {
    alignas(32) float d[8], c[8];
    k4_scales(b, d, c);
    const __m256i m15 = _mm256_set1_epi32(15);
    unroll<4>([&](auto cc) {
      const __m256 d0 = _mm256_broadcast_ss(&d[2 * cc]), c0 = _mm256_broadcast_ss(&c[2 * cc]);
      const __m256 d1 = _mm256_broadcast_ss(&d[2 * cc + 1]), c1 = _mm256_broadcast_ss(&c[2 * cc + 1]);
      unroll<4>([&](auto i) {
        const __m256i q =
            _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(b + 16 + 32 * cc + 8 * i)));
        f(IC<8 * cc + i>{}, _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_and_si256(q, m15)), d0, c0));
        f(IC<8 * cc + 4 + i>{}, _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_srli_epi32(q, 4)), d1, c1));
      });
    });
  }
};

struct Q5_K {
  static constexpr int kBlock = 256, kBytes = 176, kGroup = 32;
  static constexpr bool kMin = true;
  static constexpr bool kDirect = false;
  static QF_INLINE const int8_t* decode(const uint8_t* b, int8_t* q, float* d, float* c) {
    k4_scales(b, d, c);
    const __m256i qh = ld256(b + 16), b16 = _mm256_set1_epi8(16);
    for (int k = 0; k < 4; ++k) {
      const __m256i v = ld256(b + 48 + 32 * k);
      st256(q + 64 * k, _mm256_or_si256(_mm256_and_si256(v, _mm256_set1_epi8(15)),
                                         _mm256_and_si256(bit_bytes(qh, 2 * k), b16)));
      st256(q + 64 * k + 32, _mm256_or_si256(srl8(v, 4), _mm256_and_si256(bit_bytes(qh, 2 * k + 1), b16)));
    }
    return q;
  }
};

// Q6_K: 6-bit quants (q - 32), d[k] = d * scales[k] per 16 elements.
struct Q6_K {
  static constexpr int kBlock = 256, kBytes = 210, kGroup = 16;
  static constexpr bool kMin = false;
  static constexpr bool kDirect = false;
  static QF_INLINE const int8_t* decode(const uint8_t* b, int8_t* q, float* d, float*) {
    const __m256i m4 = _mm256_set1_epi8(15), m3 = _mm256_set1_epi8(3), o32 = _mm256_set1_epi8(32);
    for (int h = 0; h < 2; ++h) {
      const __m256i la = ld256(b + 64 * h), lb = ld256(b + 64 * h + 32), qh = ld256(b + 128 + 32 * h);
      const auto put = [&](int off, __m256i nib, int shift) {
        const __m256i hb = _mm256_slli_epi16(_mm256_and_si256(srl8(qh, shift), m3), 4);
        st256(q + 128 * h + off, _mm256_sub_epi8(_mm256_or_si256(nib, hb), o32));
      };
      put(0, _mm256_and_si256(la, m4), 0);
      put(32, _mm256_and_si256(lb, m4), 2);
      put(64, srl8(la, 4), 4);
      put(96, srl8(lb, 4), 6);
    }
    const float dd = h2f(b + 208);
    const __m128i sc = ld128(b + 192);
    _mm256_store_ps(d, _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(sc)), _mm256_set1_ps(dd)));
    _mm256_store_ps(d + 8,
                    _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_srli_si128(sc, 8))), _mm256_set1_ps(dd)));
    return q;
  }
};

// Q2_K: element 128 * half + 32 * s + l = (q[32 * half + l] >> 2s) & 3; scale byte k = (min << 4) | scale for the
// 16 elements 16k..16k+16.
struct Q2_K {
  static constexpr int kBlock = 256, kBytes = 84, kGroup = 16;
  static constexpr bool kMin = true;
  static constexpr bool kDirect = false;
  static QF_INLINE const int8_t* decode(const uint8_t* b, int8_t* q, float* d, float* c) {
    for (int h = 0; h < 2; ++h) {
      const __m256i v = ld256(b + 16 + 32 * h);
      for (int s = 0; s < 4; ++s)
        st256(q + 128 * h + 32 * s, _mm256_and_si256(_mm256_srli_epi16(v, 2 * s), _mm256_set1_epi8(3)));
    }
    const __m128i sb = ld128(b);
    const __m256 dd = _mm256_set1_ps(h2f(b + 80)), dm = _mm256_set1_ps(-h2f(b + 82));
    for (int i = 0; i < 2; ++i) {
      const __m256i s = _mm256_cvtepu8_epi32(i ? _mm_srli_si128(sb, 8) : sb);
      _mm256_store_ps(d + 8 * i, _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_and_si256(s, _mm256_set1_epi32(15))), dd));
      _mm256_store_ps(c + 8 * i, _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_srli_epi32(s, 4)), dm));
    }
    return q;
  }
};

// Q3_K: element 128 * half + 32 * s + l = ((q[32 * half + l] >> 2s) & 3) - 4 * !(hmask[l] bit 4 * half + s).
struct Q3_K {
  static constexpr int kBlock = 256, kBytes = 110, kGroup = 16;
  static constexpr bool kMin = false;
  static constexpr bool kDirect = false;
  static QF_INLINE const int8_t* decode(const uint8_t* b, int8_t* q, float* d, float*) {
    const __m256i hm = ld256(b), m3 = _mm256_set1_epi8(3), b4 = _mm256_set1_epi8(4);
    for (int h = 0; h < 2; ++h) {
      const __m256i v = ld256(b + 32 + 32 * h);
      for (int s = 0; s < 4; ++s) {
        const __m256i q2 = _mm256_and_si256(_mm256_srli_epi16(v, 2 * s), m3);
        const __m256i hb = _mm256_and_si256(bit_bytes(hm, 4 * h + s), b4);
        st256(q + 128 * h + 32 * s, _mm256_sub_epi8(_mm256_or_si256(q2, hb), b4));
      }
    }
    const uint8_t* s = b + 96;
    uint64_t lo8;
    std::memcpy(&lo8, s, 8);
    const uint32_t hi4 = rd32(s + 8);
    const __m128i lo = _mm_and_si128(_mm_set_epi64x(int64_t(lo8 >> 4), int64_t(lo8)), _mm_set1_epi8(15));
    const __m128i hiv = _mm_setr_epi32(int(hi4), int(hi4 >> 2), int(hi4 >> 4), int(hi4 >> 6));
    const __m128i sc = _mm_sub_epi8(_mm_or_si128(lo, _mm_slli_epi16(_mm_and_si128(hiv, _mm_set1_epi8(3)), 4)),
                                    _mm_set1_epi8(32));
    const __m256 dd = _mm256_set1_ps(h2f(b + 108));
    _mm256_store_ps(d, _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(sc)), dd));
    _mm256_store_ps(d + 8, _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_srli_si128(sc, 8))), dd));
    return q;
  }
};

struct IQ4_XS {
  static constexpr int kBlock = 256, kBytes = 136, kGroup = 32;
  static constexpr bool kMin = false;
  static constexpr bool kDirect = false;
  static QF_INLINE const int8_t* decode(const uint8_t* b, int8_t* q, float* d, float*) {
    const __m128i m = _mm_set1_epi8(15);
    for (int ib = 0; ib < 8; ++ib) {
      const __m128i v = ld128(b + 8 + 16 * ib);
      st128(q + 32 * ib, _mm_shuffle_epi8(iq4nl_values(), _mm_and_si128(v, m)));
      st128(q + 32 * ib + 16, _mm_shuffle_epi8(iq4nl_values(), _mm_and_si128(_mm_srli_epi16(v, 4), m)));
    }
    const __m256i sh = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    const __m256i sl = _mm256_set1_epi32(int(rd32(b + 4))), sh2 = _mm256_set1_epi32(int(rd16(b + 2)));
    const __m256i lo = _mm256_and_si256(_mm256_srlv_epi32(sl, _mm256_slli_epi32(sh, 2)), _mm256_set1_epi32(15));
    const __m256i hi = _mm256_and_si256(_mm256_srlv_epi32(sh2, _mm256_slli_epi32(sh, 1)), _mm256_set1_epi32(3));
    const __m256i ls = _mm256_sub_epi32(_mm256_or_si256(lo, _mm256_slli_epi32(hi, 4)), _mm256_set1_epi32(32));
    _mm256_store_ps(d, _mm256_mul_ps(_mm256_cvtepi32_ps(ls), _mm256_set1_ps(h2f(b))));
    return q;
  }
};

}  // namespace

QFDotFn qfdot_avx2(DType wt) {
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
