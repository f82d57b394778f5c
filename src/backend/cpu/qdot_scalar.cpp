// SPDX-License-Identifier: MIT
// Scalar level of the block-weight dot products (backend/cpu/qdot.h): every ggml block weight format, with the
// layouts of ggml-common.h.
//
// Each weight block is decoded once into integers (the block's quants, its sub-block scales and mins) and applied to
// the M activation rows; within a block the products are summed exactly in int32 and scaled once in fp32:
//   32-element formats (Q8_0 activations):  d_w * d_a * Σ q_w q_a  (+ m_w * d_a * Σ q_a for Q4_1 / Q5_1)
//   K-quants, IQ4_XS (Q8_K activations):    d * d_a * Σ_j sc_j Σ_{i∈j} q_i a_i  -  dmin * d_a * Σ_j mn_j bsum_j
// The grid-based i-quants (IQ1_S, IQ1_M, IQ2_XXS, IQ2_XS, IQ2_S, IQ3_XXS, IQ3_S) take the simple path: the block is
// dequantised with the format's own to_f32 (base/quant.h, bit-exact with ggml) into 256 floats, and their products
// with the int8 activations are summed in fp64 per block and scaled by d_a. The SIMD levels don't implement these
// formats, so this is also what the fast levels run for them.
#include <cstring>

#include "backend/cpu/qdot.h"
#include "base/quant.h"

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

// ---- grid i-quants: dequantise with the format's to_f32 -----------------------------------------------------------

template <DType T>
void dotDeq(const void* w, const void* a, int64_t a_stride, int M, int64_t n, float* out, int64_t ldo) {
  const QuantFormat* f = quant_format(T);
  const int64_t nb = n / 256;
  const auto* wb = static_cast<const uint8_t*>(w);
  const auto* ab = static_cast<const uint8_t*>(a);
  for (int m = 0; m < M; ++m) out[m * ldo] = 0.0f;
  float x[256];
  for (int64_t b = 0; b < nb; ++b) {
    f->to_f32(wb + b * f->block_bytes, x, 256);
    for (int m = 0; m < M; ++m) {
      const auto* ax = reinterpret_cast<const BlockQ8_K*>(ab + m * a_stride) + b;
      double s = 0;
      for (int i = 0; i < 256; ++i) s += double(x[i]) * ax->q[i];
      out[m * ldo] += float(s) * ax->d;
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
    case DType::IQ2_XXS: return dotDeq<DType::IQ2_XXS>;
    case DType::IQ2_XS: return dotDeq<DType::IQ2_XS>;
    case DType::IQ2_S: return dotDeq<DType::IQ2_S>;
    case DType::IQ3_XXS: return dotDeq<DType::IQ3_XXS>;
    case DType::IQ3_S: return dotDeq<DType::IQ3_S>;
    case DType::IQ1_S: return dotDeq<DType::IQ1_S>;
    case DType::IQ1_M: return dotDeq<DType::IQ1_M>;
    default: return nullptr;
  }
}

}  // namespace ds::cpu
