// SPDX-License-Identifier: MIT
// Scalar level of the block-weight dot products (backend/cpu/qdot.h): every ggml block weight format, with the
// layouts of ggml-common.h.
//
// Each weight block is decoded once into integers (the block's quants, its sub-block scales and mins) and applied to
// the M activation rows; within a block the products are summed exactly in int32 and scaled once in fp32:
//   32-element formats (Q8_0 activations):  d_w * d_a * Σ q_w q_a  (+ m_w * d_a * Σ q_a for Q4_1 / Q5_1)
//   K-quants, IQ4_XS (Q8_K activations):    d * d_a * Σ_j sc_j Σ_{i∈j} q_i a_i  -  dmin * d_a * Σ_j mn_j bsum_j
//   grid i-quants (Q8_K activations):        d * d_a * Σ_j ls_j Σ_{i∈j} q_i a_i / {8, 4, 1}   (IQ2_*, IQ3_XXS, IQ3_S)
//                                            d * d_a * (Σ_j ls_j Σ q a + 1/8 · Σ ±ls · Σ a)    (IQ1_S, IQ1_M: the delta)
// with q the grid values times their signs, decoded through the i-quant tables (base/quant_tables.h), as ggml's
// vec_dot_*_q8_K does; this is the integer reference for the SIMD levels.
#include <cstring>

#include "backend/cpu/qdot.h"
#include "base/quant.h"
#include "base/quant_tables.h"

namespace ds::cpu {
namespace {

constexpr int8_t kIq4nl[16] = {-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113};

inline uint16_t rd16(const uint8_t* p) { uint16_t v; std::memcpy(&v, p, 2); return v; }
inline uint32_t rd32(const uint8_t* p) { uint32_t v; std::memcpy(&v, p, 4); return v; }
inline float h2f(const uint8_t* p) { return f16_to_f32(rd16(p)); }

// ---- 32-element formats -----------------------------------------------------------------------------------------

struct Dec32 {
  int8_t q[32];
  float d = 0, m = 0;  // value_i = d * q_i + m
};

template <DType T> struct Fmt32;

template <> struct Fmt32<DType::Q4_0> {
  static constexpr int kBytes = 18;
  static constexpr bool kMin = false;
  static void decode(const uint8_t* b, Dec32& o) {
    o.d = h2f(b);
    for (int j = 0; j < 16; ++j) {
      o.q[j] = int8_t((b[2 + j] & 15) - 8);
      o.q[j + 16] = int8_t((b[2 + j] >> 4) - 8);
    }
  }
};
template <> struct Fmt32<DType::Q4_1> {
  static constexpr int kBytes = 20;
  static constexpr bool kMin = true;
  static void decode(const uint8_t* b, Dec32& o) {
    o.d = h2f(b);
    o.m = h2f(b + 2);
    for (int j = 0; j < 16; ++j) {
      o.q[j] = int8_t(b[4 + j] & 15);
      o.q[j + 16] = int8_t(b[4 + j] >> 4);
    }
  }
};
template <> struct Fmt32<DType::Q5_0> {
  static constexpr int kBytes = 22;
  static constexpr bool kMin = false;
  static void decode(const uint8_t* b, Dec32& o) {
    o.d = h2f(b);
    const uint32_t qh = rd32(b + 2);
    for (int j = 0; j < 16; ++j) {
      o.q[j] = int8_t(((b[6 + j] & 15) | (((qh >> j) & 1) << 4)) - 16);
      o.q[j + 16] = int8_t(((b[6 + j] >> 4) | (((qh >> (j + 16)) & 1) << 4)) - 16);
    }
  }
};
template <> struct Fmt32<DType::Q5_1> {
  static constexpr int kBytes = 24;
  static constexpr bool kMin = true;
  static void decode(const uint8_t* b, Dec32& o) {
    o.d = h2f(b);
    o.m = h2f(b + 2);
    const uint32_t qh = rd32(b + 4);
    for (int j = 0; j < 16; ++j) {
      o.q[j] = int8_t((b[8 + j] & 15) | (((qh >> j) & 1) << 4));
      o.q[j + 16] = int8_t((b[8 + j] >> 4) | (((qh >> (j + 16)) & 1) << 4));
    }
  }
};
template <> struct Fmt32<DType::Q8_0> {
  static constexpr int kBytes = 34;
  static constexpr bool kMin = false;
  static void decode(const uint8_t* b, Dec32& o) {
    o.d = h2f(b);
    std::memcpy(o.q, b + 2, 32);
  }
};
template <> struct Fmt32<DType::IQ4_NL> {
  static constexpr int kBytes = 18;
  static constexpr bool kMin = false;
  static void decode(const uint8_t* b, Dec32& o) {
    o.d = h2f(b);
    for (int j = 0; j < 16; ++j) {
      o.q[j] = kIq4nl[b[2 + j] & 15];
      o.q[j + 16] = kIq4nl[b[2 + j] >> 4];
    }
  }
};

template <DType T>
void dot32(const void* w, const void* a, int64_t a_stride, int M, int64_t n, float* out, int64_t ldo) {
  using F = Fmt32<T>;
  const int64_t nb = n / 32;
  const auto* wb = static_cast<const uint8_t*>(w);
  const auto* ab = static_cast<const uint8_t*>(a);
  for (int m = 0; m < M; ++m) out[m * ldo] = 0.0f;
  Dec32 dec;
  for (int64_t b = 0; b < nb; ++b) {
    F::decode(wb + b * F::kBytes, dec);
    for (int m = 0; m < M; ++m) {
      const auto* ax = reinterpret_cast<const BlockQ8_0*>(ab + m * a_stride) + b;
      int32_t isum = 0, asum = 0;
      for (int i = 0; i < 32; ++i) {
        isum += int32_t(dec.q[i]) * ax->q[i];
        if constexpr (F::kMin) asum += ax->q[i];
      }
      const float da = f16_to_f32(ax->d);
      float r = dec.d * da * float(isum);
      if constexpr (F::kMin) r += dec.m * da * float(asum);
      out[m * ldo] += r;
    }
  }
}

// ---- 256-element integer formats (K-quants, IQ4_XS) ---------------------------------------------------------------

// value_i = d * sc[j] * q[i] - dmin * mn[j] for i in sub-block j (sub-blocks of 256 / nsub elements).
struct DecK {
  int8_t q[256];
  int32_t sc[16];
  int32_t mn[16];
  float d = 0, dmin = 0;
};

// 6-bit scales and mins of Q4_K / Q5_K (ggml's get_scale_min_k4).
inline void scale_min_k4(const uint8_t* s, int32_t* sc, int32_t* mn) {
  for (int j = 0; j < 8; ++j) {
    if (j < 4) {
      sc[j] = s[j] & 63;
      mn[j] = s[j + 4] & 63;
    } else {
      sc[j] = (s[j + 4] & 15) | ((s[j - 4] >> 6) << 4);
      mn[j] = (s[j + 4] >> 4) | ((s[j] >> 6) << 4);
    }
  }
}

template <DType T> struct FmtK;

template <> struct FmtK<DType::Q2_K> {
  static constexpr int kBytes = 84, kSub = 16;
  static constexpr bool kMin = true;
  static void decode(const uint8_t* b, DecK& o) {
    const uint8_t* sc = b;
    const uint8_t* qs = b + 16;
    o.d = h2f(b + 80);
    o.dmin = h2f(b + 82);
    for (int j = 0; j < 16; ++j) {
      o.sc[j] = sc[j] & 15;
      o.mn[j] = sc[j] >> 4;
    }
    for (int e = 0; e < 256; ++e) {
      const int n = e / 128, j = (e % 128) / 32, l = e % 32;
      o.q[e] = int8_t((qs[32 * n + l] >> (2 * j)) & 3);
    }
  }
};
template <> struct FmtK<DType::Q3_K> {
  static constexpr int kBytes = 110, kSub = 16;
  static constexpr bool kMin = false;
  static void decode(const uint8_t* b, DecK& o) {
    const uint8_t* hm = b;
    const uint8_t* qs = b + 32;
    const uint8_t* s = b + 96;
    o.d = h2f(b + 108);
    for (int j = 0; j < 16; ++j) {
      // 6-bit scales: low 4 bits from s[0..7] (nibbles), high 2 bits from s[8..11].
      const int lo = j < 8 ? (s[j] & 15) : (s[j - 8] >> 4);
      const int hi = (s[8 + (j % 4)] >> (2 * (j / 4))) & 3;
      o.sc[j] = (lo | (hi << 4)) - 32;
      o.mn[j] = 0;
    }
    for (int e = 0; e < 256; ++e) {
      const int n = e / 128, j = (e % 128) / 32, l = e % 32;
      const int q2 = (qs[32 * n + l] >> (2 * j)) & 3;
      const int h = (hm[l] >> (4 * n + j)) & 1;
      o.q[e] = int8_t(q2 - (h ? 0 : 4));
    }
  }
};
template <> struct FmtK<DType::Q4_K> {
  static constexpr int kBytes = 144, kSub = 32;
  static constexpr bool kMin = true;
  static void decode(const uint8_t* b, DecK& o) {
    o.d = h2f(b);
    o.dmin = h2f(b + 2);
    scale_min_k4(b + 4, o.sc, o.mn);
    const uint8_t* qs = b + 16;
    for (int c = 0; c < 4; ++c)
      for (int l = 0; l < 32; ++l) {
        o.q[64 * c + l] = int8_t(qs[32 * c + l] & 15);
        o.q[64 * c + 32 + l] = int8_t(qs[32 * c + l] >> 4);
      }
  }
};
template <> struct FmtK<DType::Q5_K> {
  static constexpr int kBytes = 176, kSub = 32;
  static constexpr bool kMin = true;
  static void decode(const uint8_t* b, DecK& o) {
    o.d = h2f(b);
    o.dmin = h2f(b + 2);
    scale_min_k4(b + 4, o.sc, o.mn);
    const uint8_t* qh = b + 16;
    const uint8_t* qs = b + 48;
    for (int c = 0; c < 4; ++c)
      for (int l = 0; l < 32; ++l) {
        o.q[64 * c + l] = int8_t((qs[32 * c + l] & 15) | (((qh[l] >> (2 * c)) & 1) << 4));
        o.q[64 * c + 32 + l] = int8_t((qs[32 * c + l] >> 4) | (((qh[l] >> (2 * c + 1)) & 1) << 4));
      }
  }
};
template <> struct FmtK<DType::Q6_K> {
  static constexpr int kBytes = 210, kSub = 16;
  static constexpr bool kMin = false;
  static void decode(const uint8_t* b, DecK& o) {
    const uint8_t* ql = b;
    const uint8_t* qh = b + 128;
    const auto* sc = reinterpret_cast<const int8_t*>(b + 192);
    o.d = h2f(b + 208);
    for (int j = 0; j < 16; ++j) {
      o.sc[j] = sc[j];
      o.mn[j] = 0;
    }
    for (int n = 0; n < 2; ++n)
      for (int l = 0; l < 32; ++l) {
        const uint8_t* L = ql + 64 * n;
        const uint8_t H = qh[32 * n + l];
        int8_t* q = o.q + 128 * n;
        q[l] = int8_t(((L[l] & 15) | ((H & 3) << 4)) - 32);
        q[l + 32] = int8_t(((L[l + 32] & 15) | (((H >> 2) & 3) << 4)) - 32);
        q[l + 64] = int8_t(((L[l] >> 4) | (((H >> 4) & 3) << 4)) - 32);
        q[l + 96] = int8_t(((L[l + 32] >> 4) | (((H >> 6) & 3) << 4)) - 32);
      }
  }
};
template <> struct FmtK<DType::IQ4_XS> {
  static constexpr int kBytes = 136, kSub = 32;
  static constexpr bool kMin = false;
  static void decode(const uint8_t* b, DecK& o) {
    o.d = h2f(b);
    const uint16_t sh = rd16(b + 2);
    const uint8_t* sl = b + 4;
    const uint8_t* qs = b + 8;
    for (int ib = 0; ib < 8; ++ib) {
      o.sc[ib] = (((sl[ib / 2] >> (4 * (ib % 2))) & 15) | (((sh >> (2 * ib)) & 3) << 4)) - 32;
      o.mn[ib] = 0;
      for (int j = 0; j < 16; ++j) {
        o.q[32 * ib + j] = kIq4nl[qs[16 * ib + j] & 15];
        o.q[32 * ib + 16 + j] = kIq4nl[qs[16 * ib + j] >> 4];
      }
    }
  }
};

template <DType T>
void dotK(const void* w, const void* a, int64_t a_stride, int M, int64_t n, float* out, int64_t ldo) {
  using F = FmtK<T>;
  constexpr int kNsub = 256 / F::kSub;
  const int64_t nb = n / 256;
  const auto* wb = static_cast<const uint8_t*>(w);
  const auto* ab = static_cast<const uint8_t*>(a);
  for (int m = 0; m < M; ++m) out[m * ldo] = 0.0f;
  DecK dec;
  for (int64_t b = 0; b < nb; ++b) {
    F::decode(wb + b * F::kBytes, dec);
    for (int m = 0; m < M; ++m) {
      const auto* ax = reinterpret_cast<const BlockQ8_K*>(ab + m * a_stride) + b;
      int32_t isum = 0;
      for (int j = 0; j < kNsub; ++j) {
        int32_t s = 0;
        for (int i = j * F::kSub; i < (j + 1) * F::kSub; ++i) s += int32_t(dec.q[i]) * ax->q[i];
        isum += dec.sc[j] * s;
      }
      float r = dec.d * ax->d * float(isum);
      if constexpr (F::kMin) {
        // Σ_j mn_j Σ_{i∈j} q_a[i], from the activation's 16-element sums.
        int32_t msum = 0;
        for (int j = 0; j < 16; ++j) msum += dec.mn[j * 16 / F::kSub] * ax->bsums[j];
        r -= dec.dmin * ax->d * float(msum);
      }
      out[m * ldo] += r;
    }
  }
}

// ---- grid i-quants (Q8_K activations) -----------------------------------------------------------------------------
// Each block decodes to signed int8 weights q (grid bytes times their signs; IQ1_*: grid values in {-1, 0, 1}) and
// odd integer sub-block scales ls (one per 16 elements, repeated for formats with one per 32), as ggml's vec_dot does:
//   IQ2_*:      d * d_a * Σ_j ls_j Σ q a / 8        IQ3_XXS: ... / 4        IQ3_S: ... / 1
//   IQ1_S:      d * d_a * (Σ_j ls_j Σ q a + 1/8 · Σ_ib ±ls_ib (bsum_2ib + bsum_2ib+1))   (delta sign per 32 elements)
//   IQ1_M:      d * d_a * (Σ_j ls_j Σ q a + 1/8 · Σ_g ±ls_g Σ_{i∈g} a_i)                   (delta sign per 8 elements)
// The integer sums are exact; d * d_a and the final scaling round in fp32.

struct DecG {
  int8_t q[256];
  int32_t ls[16];    // per 16 elements
  int32_t dl[32];    // IQ1_S: ±ls per 32 elements (8 used); IQ1_M: ±ls per 8 elements
  float d = 0;
};

enum class Delta { kNone, kPer32, kPer8 };

// q = grid value · (-1 where the sign bit is set), branch-free: (v ^ -s) + s.
inline int8_t signed_by(int v, unsigned bit) { return int8_t((v ^ -int(bit)) + int(bit)); }
inline void put_signed8(int8_t* q, uint64_t grid, uint8_t signs) {
  for (int j = 0; j < 8; ++j) q[j] = signed_by(int(uint8_t(grid >> (8 * j))), (signs >> j) & 1u);
}
inline void put_signed4x2(int8_t* q, uint32_t g1, uint32_t g2, uint8_t signs) {
  for (int j = 0; j < 4; ++j) {
    q[j] = signed_by(int(uint8_t(g1 >> (8 * j))), (signs >> j) & 1u);
    q[j + 4] = signed_by(int(uint8_t(g2 >> (8 * j))), (signs >> (j + 4)) & 1u);
  }
}

template <DType T> struct FmtG;

template <> struct FmtG<DType::IQ2_XXS> {
  static constexpr int kBytes = 66;
  static constexpr float kFactor = 0.125f;
  static constexpr Delta kDelta = Delta::kNone;
  static void decode(const uint8_t* b, DecG& o) {
    o.d = h2f(b);
    for (int ib = 0; ib < 8; ++ib) {
      const uint8_t* g = b + 2 + 8 * ib;
      const uint32_t aux = rd32(g + 4);
      o.ls[2 * ib] = o.ls[2 * ib + 1] = int32_t(2 * (aux >> 28) + 1);
      for (int l = 0; l < 4; ++l)
        put_signed8(o.q + 32 * ib + 8 * l, iq_tables::kIq2xxsGrid[g[l]], iq_tables::kKsignsIq2xs[(aux >> (7 * l)) & 127]);
    }
  }
};
template <> struct FmtG<DType::IQ2_XS> {
  static constexpr int kBytes = 74;
  static constexpr float kFactor = 0.125f;
  static constexpr Delta kDelta = Delta::kNone;
  static void decode(const uint8_t* b, DecG& o) {
    o.d = h2f(b);
    for (int ib = 0; ib < 8; ++ib) {
      o.ls[2 * ib] = 2 * (b[66 + ib] & 15) + 1;
      o.ls[2 * ib + 1] = 2 * (b[66 + ib] >> 4) + 1;
    }
    for (int g = 0; g < 32; ++g) {
      const uint16_t q = rd16(b + 2 + 2 * g);
      put_signed8(o.q + 8 * g, iq_tables::kIq2xsGrid[q & 511], iq_tables::kKsignsIq2xs[q >> 9]);
    }
  }
};
template <> struct FmtG<DType::IQ2_S> {
  static constexpr int kBytes = 82;
  static constexpr float kFactor = 0.125f;
  static constexpr Delta kDelta = Delta::kNone;
  static void decode(const uint8_t* b, DecG& o) {
    o.d = h2f(b);
    const uint8_t *qs = b + 2, *signs = b + 34, *qh = b + 66, *sc = b + 74;
    for (int ib = 0; ib < 8; ++ib) {
      o.ls[2 * ib] = 2 * (sc[ib] & 15) + 1;
      o.ls[2 * ib + 1] = 2 * (sc[ib] >> 4) + 1;
    }
    for (int g = 0; g < 32; ++g)
      put_signed8(o.q + 8 * g, iq_tables::kIq2sGrid[qs[g] | (((qh[g / 4] >> (2 * (g % 4))) & 3) << 8)], signs[g]);
  }
};
template <> struct FmtG<DType::IQ3_XXS> {
  static constexpr int kBytes = 98;
  static constexpr float kFactor = 0.25f;
  static constexpr Delta kDelta = Delta::kNone;
  static void decode(const uint8_t* b, DecG& o) {
    o.d = h2f(b);
    const uint8_t* qs = b + 2;
    for (int ib = 0; ib < 8; ++ib) {
      const uint32_t aux = rd32(b + 66 + 4 * ib);
      o.ls[2 * ib] = o.ls[2 * ib + 1] = int32_t(2 * (aux >> 28) + 1);
      for (int l = 0; l < 4; ++l)
        put_signed4x2(o.q + 32 * ib + 8 * l, iq_tables::kIq3xxsGrid[qs[8 * ib + 2 * l]],
                      iq_tables::kIq3xxsGrid[qs[8 * ib + 2 * l + 1]], iq_tables::kKsignsIq2xs[(aux >> (7 * l)) & 127]);
    }
  }
};
template <> struct FmtG<DType::IQ3_S> {
  static constexpr int kBytes = 110;
  static constexpr float kFactor = 1.0f;
  static constexpr Delta kDelta = Delta::kNone;
  static void decode(const uint8_t* b, DecG& o) {
    o.d = h2f(b);
    const uint8_t *qs = b + 2, *qh = b + 66, *signs = b + 74, *sc = b + 106;
    for (int ib = 0; ib < 8; ++ib) {
      o.ls[2 * ib] = o.ls[2 * ib + 1] = 2 * ((sc[ib / 2] >> (4 * (ib % 2))) & 15) + 1;
      for (int l = 0; l < 4; ++l) {
        const int i1 = qs[8 * ib + 2 * l] | (((qh[ib] >> (2 * l)) & 1) << 8);
        const int i2 = qs[8 * ib + 2 * l + 1] | (((qh[ib] >> (2 * l + 1)) & 1) << 8);
        put_signed4x2(o.q + 32 * ib + 8 * l, iq_tables::kIq3sGrid[i1], iq_tables::kIq3sGrid[i2], signs[4 * ib + l]);
      }
    }
  }
};
template <> struct FmtG<DType::IQ1_S> {
  static constexpr int kBytes = 50;
  static constexpr float kFactor = 1.0f;
  static constexpr Delta kDelta = Delta::kPer32;
  static void decode(const uint8_t* b, DecG& o) {
    o.d = h2f(b);
    for (int ib = 0; ib < 8; ++ib) {
      const uint16_t qh = rd16(b + 34 + 2 * ib);
      const int ls = 2 * ((qh >> 12) & 7) + 1;
      o.ls[2 * ib] = o.ls[2 * ib + 1] = ls;
      o.dl[ib] = (qh & 0x8000) ? -ls : ls;
      for (int l = 0; l < 4; ++l) {
        const uint64_t grid = iq_tables::kIq1sGrid[b[2 + 4 * ib + l] | (((qh >> (3 * l)) & 7) << 8)];
        for (int j = 0; j < 8; ++j) o.q[32 * ib + 8 * l + j] = int8_t(uint8_t(grid >> (8 * j)));
      }
    }
  }
};
template <> struct FmtG<DType::IQ1_M> {
  static constexpr int kBytes = 56;
  static constexpr float kFactor = 1.0f;
  static constexpr Delta kDelta = Delta::kPer8;
  static void decode(const uint8_t* b, DecG& o) {
    const uint8_t *qs = b, *qh = b + 32;
    uint16_t sc[4];
    for (int k = 0; k < 4; ++k) sc[k] = rd16(b + 48 + 2 * k);
    o.d = f16_to_f32(uint16_t((sc[0] >> 12) | ((sc[1] >> 8) & 0x00F0) | ((sc[2] >> 4) & 0x0F00) | (sc[3] & 0xF000)));
    for (int j = 0; j < 16; ++j) o.ls[j] = 2 * ((sc[j / 4] >> (3 * (j % 4))) & 7) + 1;
    for (int g = 0; g < 32; ++g) {
      const int nib = (qh[g / 2] >> (4 * (g % 2))) & 15;  // 3 index bits, then the delta's sign
      const uint64_t grid = iq_tables::kIq1sGrid[qs[g] | ((nib & 7) << 8)];
      for (int j = 0; j < 8; ++j) o.q[8 * g + j] = int8_t(uint8_t(grid >> (8 * j)));
      o.dl[g] = (nib & 8) ? -o.ls[g / 2] : o.ls[g / 2];
    }
  }
};

template <DType T>
void dotG(const void* w, const void* a, int64_t a_stride, int M, int64_t n, float* out, int64_t ldo) {
  using F = FmtG<T>;
  const int64_t nb = n / 256;
  const auto* wb = static_cast<const uint8_t*>(w);
  const auto* ab = static_cast<const uint8_t*>(a);
  for (int m = 0; m < M; ++m) out[m * ldo] = 0.0f;
  DecG dec;
  for (int64_t b = 0; b < nb; ++b) {
    F::decode(wb + b * F::kBytes, dec);
    for (int m = 0; m < M; ++m) {
      const auto* ax = reinterpret_cast<const BlockQ8_K*>(ab + m * a_stride) + b;
      int32_t isum = 0;
      for (int j = 0; j < 16; ++j) {
        int32_t s = 0;
        for (int i = 16 * j; i < 16 * j + 16; ++i) s += int32_t(dec.q[i]) * ax->q[i];
        isum += dec.ls[j] * s;
      }
      const float dd = dec.d * ax->d;
      if constexpr (F::kDelta == Delta::kNone) {
        out[m * ldo] += F::kFactor * (dd * float(isum));
      } else {
        int32_t dsum = 0;
        if constexpr (F::kDelta == Delta::kPer32) {
          for (int ib = 0; ib < 8; ++ib) dsum += dec.dl[ib] * (ax->bsums[2 * ib] + ax->bsums[2 * ib + 1]);
        } else {
          for (int g = 0; g < 32; ++g) {
            int32_t s = 0;
            for (int i = 8 * g; i < 8 * g + 8; ++i) s += ax->q[i];
            dsum += dec.dl[g] * s;
          }
        }
        out[m * ldo] += dd * (float(isum) + iq_tables::kIq1sDelta * float(dsum));
      }
    }
  }
}

}  // namespace

QDotFn qdot_scalar(DType wt) {
  switch (wt) {
    case DType::Q4_0: return dot32<DType::Q4_0>;
    case DType::Q4_1: return dot32<DType::Q4_1>;
    case DType::Q5_0: return dot32<DType::Q5_0>;
    case DType::Q5_1: return dot32<DType::Q5_1>;
    case DType::Q8_0: return dot32<DType::Q8_0>;
    case DType::IQ4_NL: return dot32<DType::IQ4_NL>;
    case DType::Q2_K: return dotK<DType::Q2_K>;
    case DType::Q3_K: return dotK<DType::Q3_K>;
    case DType::Q4_K: return dotK<DType::Q4_K>;
    case DType::Q5_K: return dotK<DType::Q5_K>;
    case DType::Q6_K: return dotK<DType::Q6_K>;
    case DType::IQ4_XS: return dotK<DType::IQ4_XS>;
    case DType::IQ2_XXS: return dotG<DType::IQ2_XXS>;
    case DType::IQ2_XS: return dotG<DType::IQ2_XS>;
    case DType::IQ2_S: return dotG<DType::IQ2_S>;
    case DType::IQ3_XXS: return dotG<DType::IQ3_XXS>;
    case DType::IQ3_S: return dotG<DType::IQ3_S>;
    case DType::IQ1_S: return dotG<DType::IQ1_S>;
    case DType::IQ1_M: return dotG<DType::IQ1_M>;
    default: return nullptr;
  }
}

}  // namespace ds::cpu
