// SPDX-License-Identifier: MIT
// fp32 -> ggml block formats with ggml's reference (no importance matrix) algorithms; see base/quantize.h.
//
// Bit-exactness rules followed throughout: every float expression is evaluated with the operand order and the
// intermediate types ggml's C code has (int quants are converted to float where ggml converts them, `a * b * c` is
// (a * b) * c), rounding to an integer is ggml's nearest_int (round half to even through the 1.5 * 2^23 trick) or
// roundf / truncation where ggml uses those, and this file is compiled with -ffp-contract=off
// (src/base/CMakeLists.txt): no product is fused into a sum. f16 scales are rounded with f32_to_f16 (round to
// nearest even, subnormals kept), as GGML_FP32_TO_FP16 does.
#include "base/quantize.h"

#include <cfloat>
#include <cmath>
#include <cstring>

#include "base/error.h"
#include "base/quant.h"

namespace ds {

namespace {

constexpr int kSuper = 256;                // elements of a K-quant super-block
constexpr float kGroupMaxEps = 1e-15f;     // below this |max| a group is all zero (ggml's GROUP_MAX_EPS)

inline void put16(uint8_t* p, uint16_t v) {
  p[0] = uint8_t(v);
  p[1] = uint8_t(v >> 8);
}
inline void put_f16(uint8_t* p, float v) { put16(p, f32_to_f16(v)); }
inline float f16_round(float v) { return f16_to_f32(f32_to_f16(v)); }

// Round to nearest, ties to even, for |v| < 2^22: adding 1.5 * 2^23 leaves the integer in the low mantissa bits.
inline int round_even(float v) {
  const float biased = v + 12582912.f;
  int32_t bits;
  std::memcpy(&bits, &biased, 4);
  return (bits & 0x007fffff) - 0x00400000;
}

template <typename T>
inline T clamp_to(T v, T lo, T hi) {
  return v < lo ? lo : (v > hi ? hi : v);
}

// ------------------------------------------------------------------------------------------------- 32-element formats

// The element of largest magnitude (the first one on ties), signed.
inline float signed_absmax(const float* x, int n) {
  float amax = 0.f, max = 0.f;
  for (int j = 0; j < n; ++j)
    if (amax < std::fabs(x[j])) {
      amax = std::fabs(x[j]);
      max = x[j];
    }
  return max;
}

// Q8_0 {f16 d; i8 q[32]}: d = amax / 127, q = round-half-away(x / d).
void q8_0(const float* x, uint8_t* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, x += 32, y += 34) {
    float amax = 0.f;
    for (int j = 0; j < 32; ++j) amax = std::fmax(amax, std::fabs(x[j]));
    const float d = amax / 127.f;
    const float id = d != 0.f ? 1.f / d : 0.f;
    put_f16(y, d);
    for (int j = 0; j < 32; ++j) y[2 + j] = uint8_t(int8_t(std::roundf(x[j] * id)));
  }
}

// Q4_0 {f16 d; u8 qs[16]} and Q5_0 {f16 d; u8 qh[4]; u8 qs[16]}: d = max / -2^(bits-1) (max = the signed element of
// largest magnitude, which lands on the most negative level), q = trunc(x / d + 2^(bits-1) + 0.5) capped at the top.
// Element j sits in the low nibble of qs[j], element j + 16 in the high one; Q5_0's fifth bits go to qh bit j.
void q4_0(const float* x, uint8_t* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, x += 32, y += 18) {
    const float d = signed_absmax(x, 32) / -8.f;
    const float id = d != 0.f ? 1.f / d : 0.f;
    put_f16(y, d);
    for (int j = 0; j < 16; ++j) {
      const int lo = std::min(15, int(int8_t(x[j] * id + 8.5f)));
      const int hi = std::min(15, int(int8_t(x[j + 16] * id + 8.5f)));
      y[2 + j] = uint8_t(lo | (hi << 4));
    }
  }
}

void q5_0(const float* x, uint8_t* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, x += 32, y += 22) {
    const float d = signed_absmax(x, 32) / -16.f;
    const float id = d != 0.f ? 1.f / d : 0.f;
    put_f16(y, d);
    uint32_t qh = 0;
    for (int j = 0; j < 16; ++j) {
      const int lo = std::min(31, int(int8_t(x[j] * id + 16.5f)));
      const int hi = std::min(31, int(int8_t(x[j + 16] * id + 16.5f)));
      y[6 + j] = uint8_t((lo & 0xF) | ((hi & 0xF) << 4));
      qh |= uint32_t((lo >> 4) & 1) << j;
      qh |= uint32_t((hi >> 4) & 1) << (j + 16);
    }
    for (int k = 0; k < 4; ++k) y[2 + k] = uint8_t(qh >> (8 * k));
  }
}

// Q4_1 {f16 d; f16 m; u8 qs[16]} and Q5_1 {f16 d; f16 m; u8 qh[4]; u8 qs[16]}: m = min, d = (max - min) / (2^bits - 1),
// q = trunc((x - min) / d + 0.5) (capped at 15 for Q4_1, as ggml does; Q5_1 is not capped there either).
void min_max(const float* x, float* mn, float* mx) {
  *mn = FLT_MAX;
  *mx = -FLT_MAX;
  for (int j = 0; j < 32; ++j) {
    if (x[j] < *mn) *mn = x[j];
    if (x[j] > *mx) *mx = x[j];
  }
}

void q4_1(const float* x, uint8_t* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, x += 32, y += 20) {
    float mn, mx;
    min_max(x, &mn, &mx);
    const float d = (mx - mn) / 15.f;
    const float id = d != 0.f ? 1.f / d : 0.f;
    put_f16(y, d);
    put_f16(y + 2, mn);
    for (int j = 0; j < 16; ++j) {
      const int lo = std::min(15, int(int8_t((x[j] - mn) * id + 0.5f)));
      const int hi = std::min(15, int(int8_t((x[j + 16] - mn) * id + 0.5f)));
      y[4 + j] = uint8_t(lo | (hi << 4));
    }
  }
}

void q5_1(const float* x, uint8_t* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, x += 32, y += 24) {
    float mn, mx;
    min_max(x, &mn, &mx);
    const float d = (mx - mn) / 31.f;
    const float id = d != 0.f ? 1.f / d : 0.f;
    put_f16(y, d);
    put_f16(y + 2, mn);
    uint32_t qh = 0;
    for (int j = 0; j < 16; ++j) {
      const int lo = uint8_t((x[j] - mn) * id + 0.5f);
      const int hi = uint8_t((x[j + 16] - mn) * id + 0.5f);
      y[8 + j] = uint8_t((lo & 0xF) | ((hi & 0xF) << 4));
      qh |= uint32_t((lo >> 4) & 1) << j;
      qh |= uint32_t((hi >> 4) & 1) << (j + 16);
    }
    for (int k = 0; k < 4; ++k) y[4 + k] = uint8_t(qh >> (8 * k));
  }
}

// ------------------------------------------------------------------------------------------------- K-quants

// Asymmetric quantisation of one group of n values to levels 0..nmax, x ~ scale * L - min_out (min_out >= 0): start
// from the min/max grid, then try nstep + 1 widened grids (rmin + rdelta * is extra levels), fitting scale and
// offset of each by weighted least squares, and keep the one of least weighted squared (or absolute) error.
// Returns the scale; *min_out is the offset to subtract. L holds the levels; aux is scratch of n levels.
float fit_scale_min(int n, int nmax, const float* x, const float* w, uint8_t* L, float* min_out, uint8_t* aux,
                    float rmin, float rdelta, int nstep, bool use_mad) {
  float lo = x[0], hi = x[0];
  float sum_w = w[0];
  float sum_x = sum_w * x[0];
  for (int i = 1; i < n; ++i) {
    if (x[i] < lo) lo = x[i];
    if (x[i] > hi) hi = x[i];
    sum_w += w[i];
    sum_x += w[i] * x[i];
  }
  if (lo > 0) lo = 0;
  if (hi == lo) {
    for (int i = 0; i < n; ++i) L[i] = 0;
    *min_out = -lo;
    return 0.f;
  }
  float iscale = float(nmax) / (hi - lo);
  float scale = 1 / iscale;
  float best = 0;
  for (int i = 0; i < n; ++i) {
    L[i] = uint8_t(clamp_to(round_even(iscale * (x[i] - lo)), 0, nmax));
    float diff = scale * float(L[i]) + lo - x[i];
    diff = use_mad ? std::fabs(diff) : diff * diff;
    best += w[i] * diff;
  }
  if (nstep < 1) {
    *min_out = -lo;
    return scale;
  }
  for (int is = 0; is <= nstep; ++is) {
    iscale = (rmin + rdelta * float(is) + float(nmax)) / (hi - lo);
    float sum_l = 0, sum_l2 = 0, sum_xl = 0;
    for (int i = 0; i < n; ++i) {
      const int l = clamp_to(round_even(iscale * (x[i] - lo)), 0, nmax);
      aux[i] = uint8_t(l);
      const float wl = w[i] * float(l);
      sum_l += wl;
      sum_l2 += wl * float(l);
      sum_xl += wl * x[i];
    }
    const float det = sum_w * sum_l2 - sum_l * sum_l;
    if (det > 0) {
      float s = (sum_w * sum_xl - sum_x * sum_l) / det;
      float m = (sum_l2 * sum_x - sum_l * sum_xl) / det;
      if (m > 0) {
        m = 0;
        s = sum_xl / sum_l2;
      }
      float err = 0;
      for (int i = 0; i < n; ++i) {
        float diff = s * float(aux[i]) + m - x[i];
        diff = use_mad ? std::fabs(diff) : diff * diff;
        err += w[i] * diff;
      }
      if (err < best) {
        std::memcpy(L, aux, size_t(n));
        best = err;
        scale = s;
        lo = m;
      }
    }
  }
  *min_out = -lo;
  return scale;
}

// The 12 scale bytes of Q4_K / Q5_K: eight 6-bit (scale, min) pairs. Pairs 0-3 take the low 6 bits of bytes j and
// j + 4; pairs 4-7 take a nibble each of byte j + 4 and their top two bits from the top of bytes j - 4 and j.
void pack_scale_mins(const uint8_t* ls, const uint8_t* lm, uint8_t* s) {
  for (int j = 0; j < 4; ++j) {
    s[j] = ls[j];
    s[j + 4] = lm[j];
  }
  for (int j = 4; j < 8; ++j) {
    s[j + 4] = uint8_t((ls[j] & 0xF) | ((lm[j] & 0xF) << 4));
    s[j - 4] |= uint8_t((ls[j] >> 4) << 6);
    s[j] |= uint8_t((lm[j] >> 4) << 6);
  }
}

void unpack_scale_min(int j, const uint8_t* s, int* sc, int* m) {
  if (j < 4) {
    *sc = s[j] & 63;
    *m = s[j + 4] & 63;
  } else {
    *sc = (s[j + 4] & 0xF) | ((s[j - 4] >> 6) << 4);
    *m = (s[j + 4] >> 4) | ((s[j] >> 6) << 4);
  }
}

// Q4_K {f16 d; f16 dmin; u8 scales[12]; u8 qs[128]} (nmax 15) and Q5_K {... u8 qh[32]; u8 qs[128]} (nmax 31): per
// 32-element group a (scale, min) fit weighted by av + |x| (av = the group's rms), the eight scales and mins then
// quantised to 6 bits against the block's largest (d = max scale / 63, dmin = max min / 63), and every element
// re-quantised with its group's rounded scale and min. A group whose rounded scale is 0 keeps the fit's levels.
void k_levels(const float* x, uint8_t* blk, int nmax, float rmin, int nstep, uint8_t* L) {
  float scales[8], mins[8], w[32];
  uint8_t aux[32];
  float max_scale = 0, max_min = 0;
  for (int j = 0; j < 8; ++j) {
    const float* g = x + 32 * j;
    float sum_x2 = 0;
    for (int l = 0; l < 32; ++l) sum_x2 += g[l] * g[l];
    const float av = std::sqrt(sum_x2 / 32);
    for (int l = 0; l < 32; ++l) w[l] = av + std::fabs(g[l]);
    scales[j] = fit_scale_min(32, nmax, g, w, L + 32 * j, &mins[j], aux, rmin, 0.1f, nstep, false);
    if (scales[j] > max_scale) max_scale = scales[j];
    if (mins[j] > max_min) max_min = mins[j];
  }
  const float inv_scale = max_scale > 0 ? 63.f / max_scale : 0.f;
  const float inv_min = max_min > 0 ? 63.f / max_min : 0.f;
  uint8_t ls[8], lm[8];
  for (int j = 0; j < 8; ++j) {
    ls[j] = std::min<uint8_t>(63, uint8_t(round_even(inv_scale * scales[j])));
    lm[j] = std::min<uint8_t>(63, uint8_t(round_even(inv_min * mins[j])));
  }
  put_f16(blk, max_scale / 63.f);
  put_f16(blk + 2, max_min / 63.f);
  pack_scale_mins(ls, lm, blk + 4);
  const float d_all = f16_round(max_scale / 63.f), dmin_all = f16_round(max_min / 63.f);
  for (int j = 0; j < 8; ++j) {
    int sc, m;
    unpack_scale_min(j, blk + 4, &sc, &m);
    const float d = d_all * float(sc);
    if (d == 0.f) continue;
    const float dm = dmin_all * float(m);
    for (int l = 0; l < 32; ++l) L[32 * j + l] = uint8_t(clamp_to(round_even((x[32 * j + l] + dm) / d), 0, nmax));
  }
}

void q4_k(const float* x, uint8_t* y, int64_t nb) {
  uint8_t L[kSuper];
  for (int64_t i = 0; i < nb; ++i, x += kSuper, y += 144) {
    k_levels(x, y, 15, -1.f, 20, L);
    // Each 64 elements: 32 bytes, element l in the low nibble and element l + 32 in the high one.
    uint8_t* q = y + 16;
    for (int c = 0; c < kSuper; c += 64, q += 32)
      for (int l = 0; l < 32; ++l) q[l] = uint8_t(L[c + l] | (L[c + l + 32] << 4));
  }
}

void q5_k(const float* x, uint8_t* y, int64_t nb) {
  uint8_t L[kSuper];
  for (int64_t i = 0; i < nb; ++i, x += kSuper, y += 176) {
    k_levels(x, y, 31, -0.5f, 15, L);
    // Low nibbles as Q4_K; the fifth bit of element c + l goes to qh[l] bit 2k (k = c / 64), of c + l + 32 to 2k + 1.
    uint8_t* qh = y + 16;
    uint8_t* ql = y + 48;
    std::memset(qh, 0, 32);
    for (int c = 0, k = 0; c < kSuper; c += 64, ++k, ql += 32)
      for (int l = 0; l < 32; ++l) {
        const int a = L[c + l], b = L[c + l + 32];
        if (a > 15) qh[l] |= uint8_t(1 << (2 * k));
        if (b > 15) qh[l] |= uint8_t(2 << (2 * k));
        ql[l] = uint8_t((a & 0xF) | ((b & 0xF) << 4));
      }
  }
}

// Symmetric quantisation of n values to signed levels -nmax..nmax-1 (stored + nmax), weighted by x^2: the grid of
// the signed absolute maximum, refined by a least-squares scale, then 18 nearby grids (nmax +- 0.1 k) tried, keeping
// the best weighted fit. Returns the scale (0 for an all-zero group).
float fit_scale_signed(int n, int nmax, const float* x, int8_t* L) {
  float amax = 0, max = 0;
  for (int i = 0; i < n; ++i)
    if (std::fabs(x[i]) > amax) {
      amax = std::fabs(x[i]);
      max = x[i];
    }
  if (amax < kGroupMaxEps) {
    for (int i = 0; i < n; ++i) L[i] = 0;
    return 0.f;
  }
  float iscale = float(-nmax) / max;
  float sumlx = 0, suml2 = 0;
  for (int i = 0; i < n; ++i) {
    const int l = clamp_to(round_even(iscale * x[i]), -nmax, nmax - 1);
    L[i] = int8_t(l + nmax);
    const float w = x[i] * x[i];
    sumlx += w * x[i] * float(l);
    suml2 += w * float(l) * float(l);
  }
  float scale = suml2 != 0.f ? sumlx / suml2 : 0.0f;
  float best = scale * sumlx;
  for (int is = -9; is <= 9; ++is) {
    if (is == 0) continue;
    iscale = -(float(nmax) + 0.1f * float(is)) / max;
    sumlx = suml2 = 0;
    for (int i = 0; i < n; ++i) {
      const int l = clamp_to(round_even(iscale * x[i]), -nmax, nmax - 1);
      const float w = x[i] * x[i];
      sumlx += w * x[i] * float(l);
      suml2 += w * float(l) * float(l);
    }
    if (suml2 > 0 && sumlx * sumlx > best * suml2) {
      for (int i = 0; i < n; ++i) L[i] = int8_t(nmax + clamp_to(round_even(iscale * x[i]), -nmax, nmax - 1));
      scale = sumlx / suml2;
      best = scale * sumlx;
    }
  }
  return scale;
}

// Q6_K {u8 ql[128]; u8 qh[64]; i8 scales[16]; f16 d}: 16 groups of 16, each fitted by fit_scale_signed (levels
// -32..31); the group scales are quantised to int8 against the block's largest |scale| (d = that scale / -128) and
// every element re-quantised with its group's rounded scale (a group whose rounded scale is 0 keeps its fit).
void q6_k(const float* x, uint8_t* y, int64_t nb) {
  int8_t L[kSuper];
  float scales[16];
  for (int64_t i = 0; i < nb; ++i, x += kSuper, y += 210) {
    float max_scale = 0, max_abs = 0;
    for (int g = 0; g < 16; ++g) {
      scales[g] = fit_scale_signed(16, 32, x + 16 * g, L + 16 * g);
      if (std::fabs(scales[g]) > max_abs) {
        max_abs = std::fabs(scales[g]);
        max_scale = scales[g];
      }
    }
    if (max_abs < kGroupMaxEps) {
      std::memset(y, 0, 210);
      continue;
    }
    const float iscale = -128.f / max_scale;
    put_f16(y + 208, 1 / iscale);
    int8_t* sc = reinterpret_cast<int8_t*>(y + 192);
    for (int g = 0; g < 16; ++g) sc[g] = int8_t(std::min(127, round_even(iscale * scales[g])));
    const float d_all = f16_round(1 / iscale);
    for (int g = 0; g < 16; ++g) {
      const float d = d_all * float(sc[g]);
      if (d == 0.f) continue;
      for (int l = 0; l < 16; ++l) L[16 * g + l] = int8_t(clamp_to(round_even(x[16 * g + l] / d), -32, 31) + 32);
    }
    // Per 128 elements: ql[l] = low nibbles of elements l and l + 64, ql[l + 32] = of l + 32 and l + 96; qh[l] = the
    // top two bits of l, l + 32, l + 64, l + 96 in bits 0-1, 2-3, 4-5, 6-7.
    uint8_t* ql = y;
    uint8_t* qh = y + 128;
    for (int c = 0; c < kSuper; c += 128, ql += 64, qh += 32)
      for (int l = 0; l < 32; ++l) {
        const int a = L[c + l], b = L[c + l + 32], e = L[c + l + 64], f = L[c + l + 96];
        ql[l] = uint8_t((a & 0xF) | ((e & 0xF) << 4));
        ql[l + 32] = uint8_t((b & 0xF) | ((f & 0xF) << 4));
        qh[l] = uint8_t((a >> 4) | ((b >> 4) << 2) | ((e >> 4) << 4) | ((f >> 4) << 6));
      }
  }
}

}  // namespace

bool can_quantize(DType t) {
  switch (t) {
    case DType::F32: case DType::F16: case DType::BF16: case DType::Q8_0: case DType::Q4_0: case DType::Q4_1:
    case DType::Q5_0: case DType::Q5_1: case DType::Q4_K: case DType::Q5_K: case DType::Q6_K:
      return true;
    default:
      return false;
  }
}

void quantize_row(DType type, const float* x, void* out, int64_t n) {
  DS_CHECK(can_quantize(type), "quantize: cannot write type ", dtype_name(type),
           " (F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q4_K, Q5_K, Q6_K)");
  const QuantFormat* f = quant_format(type);
  DS_ASSERT(f);
  DS_CHECK(n >= 0 && n % f->block == 0, "quantize: a row of ", n, " elements is not a multiple of ", dtype_name(type),
           "'s block of ", f->block);
  auto* y = static_cast<uint8_t*>(out);
  const int64_t nb = n / f->block;
  switch (type) {
    case DType::F32: std::memcpy(y, x, size_t(n) * 4); break;
    case DType::F16: for (int64_t i = 0; i < n; ++i) put16(y + 2 * i, f32_to_f16(x[i])); break;
    case DType::BF16: for (int64_t i = 0; i < n; ++i) put16(y + 2 * i, f32_to_bf16(x[i])); break;
    case DType::Q8_0: q8_0(x, y, nb); break;
    case DType::Q4_0: q4_0(x, y, nb); break;
    case DType::Q4_1: q4_1(x, y, nb); break;
    case DType::Q5_0: q5_0(x, y, nb); break;
    case DType::Q5_1: q5_1(x, y, nb); break;
    case DType::Q4_K: q4_k(x, y, nb); break;
    case DType::Q5_K: q5_k(x, y, nb); break;
    case DType::Q6_K: q6_k(x, y, nb); break;
    default: DS_ASSERT(false);
  }
}

}  // namespace ds
