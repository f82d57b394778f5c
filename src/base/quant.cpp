// SPDX-License-Identifier: MIT
// Weight-format descriptors and scalar dequantisation, bit-exact with ggml (see base/quant.h).
//
// Each to_f32 below performs the same float operations, in the same order, as ggml-quants.c's dequantize_row_*
// (integer parts are exact; every float product / sum is one IEEE operation, so equal operations give equal bits).
// This file is compiled with -ffp-contract=off (src/base/CMakeLists.txt) so that `d * q - m` stays a rounded product
// and a rounded difference, as in ggml and gguf-py (with f16 scales and narrow quants the products happen to be exact
// today, so a fused multiply-add would give the same bits, but nothing here should depend on that).
// Block layouts are read byte by byte at ggml's offsets (ggml-common.h); multi-byte fields are little-endian.
#include "base/quant.h"

#include <cmath>
#include <cstring>

#include "base/error.h"
#include "base/quant_tables.h"

namespace ds {

namespace {

using namespace iq_tables;  // NOLINT(google-build-using-namespace): the i-quant grids and sign tables

constexpr int kQK = 256;  // ggml's QK_K: elements per super-block

inline uint16_t rd16(const uint8_t* p) { return uint16_t(p[0] | (p[1] << 8)); }
inline uint32_t rd32(const uint8_t* p) {
  return uint32_t(p[0]) | (uint32_t(p[1]) << 8) | (uint32_t(p[2]) << 16) | (uint32_t(p[3]) << 24);
}
inline float rdf16(const uint8_t* p) { return f16_to_f32(rd16(p)); }
// Byte j of a packed grid entry (ggml reads grid entries through a byte pointer on a little-endian machine).
inline uint8_t grid_u8(uint64_t g, int j) { return uint8_t(g >> (8 * j)); }
inline float sign_of(uint8_t signs, int j) { return (signs & kKmaskIq2xs[j]) ? -1.f : 1.f; }

// ---------------------------------------------------------------------------------------------- plain element types

void f32_to_f32(const void* src, float* y, int64_t n) { std::memcpy(y, src, size_t(n) * 4); }
void f16_row(const void* src, float* y, int64_t n) {
  const auto* p = static_cast<const uint8_t*>(src);
  for (int64_t i = 0; i < n; ++i) y[i] = f16_to_f32(rd16(p + 2 * i));
}
void bf16_row(const void* src, float* y, int64_t n) {
  const auto* p = static_cast<const uint8_t*>(src);
  for (int64_t i = 0; i < n; ++i) y[i] = bf16_to_f32(rd16(p + 2 * i));
}
void f8e4m3_row(const void* src, float* y, int64_t n) {
  const auto* p = static_cast<const uint8_t*>(src);
  for (int64_t i = 0; i < n; ++i) y[i] = fp8_e4m3_to_f32(p[i]);
}

// ---------------------------------------------------------------------------------------------- 32-element formats

// Q4_0 {f16 d; u8 qs[16]}: x = (q - 8) * d; low nibbles are elements 0..15, high nibbles 16..31.
void q4_0_row(const void* src, float* y, int64_t n) {
  const auto* b = static_cast<const uint8_t*>(src);
  for (int64_t i = 0; i < n / 32; ++i, b += 18, y += 32) {
    const float d = rdf16(b);
    const uint8_t* qs = b + 2;
    for (int j = 0; j < 16; ++j) {
      y[j] = float((qs[j] & 0xF) - 8) * d;
      y[j + 16] = float((qs[j] >> 4) - 8) * d;
    }
  }
}

// Q4_1 {f16 d; f16 m; u8 qs[16]}: x = q * d + m.
void q4_1_row(const void* src, float* y, int64_t n) {
  const auto* b = static_cast<const uint8_t*>(src);
  for (int64_t i = 0; i < n / 32; ++i, b += 20, y += 32) {
    const float d = rdf16(b), m = rdf16(b + 2);
    const uint8_t* qs = b + 4;
    for (int j = 0; j < 16; ++j) {
      y[j] = float(qs[j] & 0xF) * d + m;
      y[j + 16] = float(qs[j] >> 4) * d + m;
    }
  }
}

// Q5_0 {f16 d; u32 qh; u8 qs[16]}: 5-bit q = nibble | (bit j of qh) << 4 (bit j + 16 for the high half); x = (q-16)*d.
void q5_0_row(const void* src, float* y, int64_t n) {
  const auto* b = static_cast<const uint8_t*>(src);
  for (int64_t i = 0; i < n / 32; ++i, b += 22, y += 32) {
    const float d = rdf16(b);
    const uint32_t qh = rd32(b + 2);
    const uint8_t* qs = b + 6;
    for (int j = 0; j < 16; ++j) {
      const int lo = (qs[j] & 0xF) | int(((qh >> j) & 1) << 4);
      const int hi = (qs[j] >> 4) | int(((qh >> (j + 16)) & 1) << 4);
      y[j] = float(lo - 16) * d;
      y[j + 16] = float(hi - 16) * d;
    }
  }
}

// Q5_1 {f16 d; f16 m; u32 qh; u8 qs[16]}: x = q * d + m.
void q5_1_row(const void* src, float* y, int64_t n) {
  const auto* b = static_cast<const uint8_t*>(src);
  for (int64_t i = 0; i < n / 32; ++i, b += 24, y += 32) {
    const float d = rdf16(b), m = rdf16(b + 2);
    const uint32_t qh = rd32(b + 4);
    const uint8_t* qs = b + 8;
    for (int j = 0; j < 16; ++j) {
      const int lo = (qs[j] & 0xF) | int(((qh >> j) & 1) << 4);
      const int hi = (qs[j] >> 4) | int(((qh >> (j + 16)) & 1) << 4);
      y[j] = float(lo) * d + m;
      y[j + 16] = float(hi) * d + m;
    }
  }
}

// Q8_0 {f16 d; i8 qs[32]}: x = q * d.
void q8_0_row(const void* src, float* y, int64_t n) {
  const auto* b = static_cast<const uint8_t*>(src);
  for (int64_t i = 0; i < n / 32; ++i, b += 34, y += 32) {
    const float d = rdf16(b);
    for (int j = 0; j < 32; ++j) y[j] = float(int8_t(b[2 + j])) * d;
  }
}

// IQ4_NL {f16 d; u8 qs[16]}: x = d * kvalues[nibble].
void iq4_nl_row(const void* src, float* y, int64_t n) {
  const auto* b = static_cast<const uint8_t*>(src);
  for (int64_t i = 0; i < n / 32; ++i, b += 18, y += 32) {
    const float d = rdf16(b);
    const uint8_t* qs = b + 2;
    for (int j = 0; j < 16; ++j) {
      y[j] = d * float(kValuesIq4nl[qs[j] & 0xF]);
      y[j + 16] = d * float(kValuesIq4nl[qs[j] >> 4]);
    }
  }
}

// ---------------------------------------------------------------------------------------------- k-quants (256)

// Q2_K {u8 scales[16]; u8 qs[64]; f16 d; f16 dmin}: 16 sub-blocks of 16; scale byte = (min << 4) | scale;
// x = (d * scale) * q - (dmin * min). The 2-bit q's of 128 elements share 32 bytes, 4 shifts of 2 bits.
void q2_k_row(const void* src, float* y, int64_t n) {
  const auto* b = static_cast<const uint8_t*>(src);
  for (int64_t i = 0; i < n / kQK; ++i, b += 84) {
    const uint8_t* sc = b;
    const uint8_t* q = b + 16;
    const float d = rdf16(b + 80), dmin = rdf16(b + 82);
    int is = 0;
    for (int half = 0; half < 2; ++half, q += 32) {
      for (int shift = 0; shift < 8; shift += 2) {
        for (int part = 0; part < 2; ++part) {
          const uint8_t s = sc[is++];
          const float dl = d * float(s & 0xF), ml = dmin * float(s >> 4);
          for (int l = 0; l < 16; ++l) *y++ = dl * float((q[16 * part + l] >> shift) & 3) - ml;
        }
      }
    }
  }
}

// The 6-bit scale `is` (0..15) of a Q3_K block, as a signed value (stored biased by 32): low 4 bits in byte is % 8
// (low nibble for is < 8, high nibble otherwise), high 2 bits in byte 8 + is % 4 at bit 2 * (is / 4).
inline int q3_k_scale(const uint8_t* s, int is) {
  const int lo = is < 8 ? (s[is] & 0xF) : (s[is - 8] >> 4);
  const int hi = (s[8 + is % 4] >> (2 * (is / 4))) & 3;
  return (lo | (hi << 4)) - 32;
}

// Q3_K {u8 hmask[32]; u8 qs[64]; u8 scales[12]; f16 d}: x = (d * scale) * (q2 - (high bit clear ? 4 : 0)).
void q3_k_row(const void* src, float* y, int64_t n) {
  const auto* b = static_cast<const uint8_t*>(src);
  for (int64_t i = 0; i < n / kQK; ++i, b += 110) {
    const uint8_t* hm = b;
    const uint8_t* q = b + 32;
    const uint8_t* scales = b + 96;
    const float d_all = rdf16(b + 108);
    int is = 0;
    uint8_t m = 1;
    for (int half = 0; half < 2; ++half, q += 32) {
      for (int shift = 0; shift < 8; shift += 2, m = uint8_t(m << 1)) {
        for (int part = 0; part < 2; ++part) {
          const float dl = d_all * float(q3_k_scale(scales, is++));
          for (int l = 16 * part; l < 16 * part + 16; ++l) {
            const int v = ((q[l] >> shift) & 3) - ((hm[l] & m) ? 0 : 4);
            *y++ = dl * float(v);
          }
        }
      }
    }
  }
}

// The 6-bit (scale, min) pair j (0..7) of a Q4_K / Q5_K block's 12 scale bytes (ggml's get_scale_min_k4).
inline void k4_scale_min(const uint8_t* s, int j, int* sc, int* mn) {
  if (j < 4) {
    *sc = s[j] & 63;
    *mn = s[j + 4] & 63;
  } else {
    *sc = (s[j + 4] & 0xF) | ((s[j - 4] >> 6) << 4);
    *mn = (s[j + 4] >> 4) | ((s[j] >> 6) << 4);
  }
}

// Q4_K {f16 d; f16 dmin; u8 scales[12]; u8 qs[128]}: 8 sub-blocks of 32; x = (d * sc) * q - (dmin * m).
void q4_k_row(const void* src, float* y, int64_t n) {
  const auto* b = static_cast<const uint8_t*>(src);
  for (int64_t i = 0; i < n / kQK; ++i, b += 144) {
    const float d = rdf16(b), dmin = rdf16(b + 2);
    const uint8_t* scales = b + 4;
    const uint8_t* q = b + 16;
    for (int j = 0; j < 8; j += 2, q += 32) {
      int sc, mn;
      k4_scale_min(scales, j, &sc, &mn);
      const float d1 = d * float(sc), m1 = dmin * float(mn);
      k4_scale_min(scales, j + 1, &sc, &mn);
      const float d2 = d * float(sc), m2 = dmin * float(mn);
      for (int l = 0; l < 32; ++l) *y++ = d1 * float(q[l] & 0xF) - m1;
      for (int l = 0; l < 32; ++l) *y++ = d2 * float(q[l] >> 4) - m2;
    }
  }
}

// Q5_K {f16 d; f16 dmin; u8 scales[12]; u8 qh[32]; u8 qs[128]}: as Q4_K with a fifth bit from qh (bit 2k / 2k+1 of
// qh[l] for the k-th 64-element chunk).
void q5_k_row(const void* src, float* y, int64_t n) {
  const auto* b = static_cast<const uint8_t*>(src);
  for (int64_t i = 0; i < n / kQK; ++i, b += 176) {
    const float d = rdf16(b), dmin = rdf16(b + 2);
    const uint8_t* scales = b + 4;
    const uint8_t* qh = b + 16;
    const uint8_t* ql = b + 48;
    for (int j = 0; j < 8; j += 2, ql += 32) {
      int sc, mn;
      k4_scale_min(scales, j, &sc, &mn);
      const float d1 = d * float(sc), m1 = dmin * float(mn);
      k4_scale_min(scales, j + 1, &sc, &mn);
      const float d2 = d * float(sc), m2 = dmin * float(mn);
      const uint8_t u1 = uint8_t(1u << j), u2 = uint8_t(2u << j);
      for (int l = 0; l < 32; ++l) *y++ = d1 * float((ql[l] & 0xF) + ((qh[l] & u1) ? 16 : 0)) - m1;
      for (int l = 0; l < 32; ++l) *y++ = d2 * float((ql[l] >> 4) + ((qh[l] & u2) ? 16 : 0)) - m2;
    }
  }
}

// Q6_K {u8 ql[128]; u8 qh[64]; i8 scales[16]; f16 d}: 6-bit q - 32; x = (d * scale) * q.
void q6_k_row(const void* src, float* y, int64_t n) {
  const auto* b = static_cast<const uint8_t*>(src);
  for (int64_t i = 0; i < n / kQK; ++i, b += 210) {
    const uint8_t* ql = b;
    const uint8_t* qh = b + 128;
    const auto* sc = reinterpret_cast<const int8_t*>(b + 192);
    const float d = rdf16(b + 208);
    for (int half = 0; half < 2; ++half, y += 128, ql += 64, qh += 32, sc += 8) {
      for (int l = 0; l < 32; ++l) {
        const int is = l / 16;
        const int q1 = ((ql[l] & 0xF) | (((qh[l] >> 0) & 3) << 4)) - 32;
        const int q2 = ((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32;
        const int q3 = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
        const int q4 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
        y[l] = d * float(sc[is]) * float(q1);
        y[l + 32] = d * float(sc[is + 2]) * float(q2);
        y[l + 64] = d * float(sc[is + 4]) * float(q3);
        y[l + 96] = d * float(sc[is + 6]) * float(q4);
      }
    }
  }
}

// ---------------------------------------------------------------------------------------------- i-quants (256)

// IQ2_XXS {f16 d; u16 qs[32]}: per 32 elements two u32: 4 grid indices (bytes of the first), then 4 x 7-bit sign
// indices and a 4-bit scale (top) in the second; x = (d * (0.5 + s) * 0.25) * grid * sign.
void iq2_xxs_row(const void* src, float* y, int64_t n) {
  const auto* b = static_cast<const uint8_t*>(src);
  for (int64_t i = 0; i < n / kQK; ++i, b += 66) {
    const float d = rdf16(b);
    for (int ib = 0; ib < 8; ++ib) {
      const uint8_t* g = b + 2 + 8 * ib;
      const uint32_t aux1 = rd32(g + 4);
      const float db = d * (0.5f + float(aux1 >> 28)) * 0.25f;
      for (int l = 0; l < 4; ++l, y += 8) {
        const uint64_t grid = kIq2xxsGrid[g[l]];
        const uint8_t signs = kKsignsIq2xs[(aux1 >> (7 * l)) & 127];
        for (int j = 0; j < 8; ++j) y[j] = db * float(grid_u8(grid, j)) * sign_of(signs, j);
      }
    }
  }
}

// IQ2_XS {f16 d; u16 qs[32]; u8 scales[8]}: q = 9-bit grid index | 7-bit sign index << 9; two 4-bit scales per 32.
void iq2_xs_row(const void* src, float* y, int64_t n) {
  const auto* b = static_cast<const uint8_t*>(src);
  for (int64_t i = 0; i < n / kQK; ++i, b += 74) {
    const float d = rdf16(b);
    const uint8_t* scales = b + 66;
    for (int ib = 0; ib < 8; ++ib) {
      const float db[2] = {d * (0.5f + float(scales[ib] & 0xF)) * 0.25f, d * (0.5f + float(scales[ib] >> 4)) * 0.25f};
      for (int l = 0; l < 4; ++l, y += 8) {
        const uint16_t q = rd16(b + 2 + 2 * (4 * ib + l));
        const uint64_t grid = kIq2xsGrid[q & 511];
        const uint8_t signs = kKsignsIq2xs[q >> 9];
        for (int j = 0; j < 8; ++j) y[j] = db[l / 2] * float(grid_u8(grid, j)) * sign_of(signs, j);
      }
    }
  }
}

// IQ2_S {f16 d; u8 qs[32]; u8 signs[32]; u8 qh[8]; u8 scales[8]}: 10-bit grid index = qs | 2 bits of qh << 8;
// explicit sign bytes.
void iq2_s_row(const void* src, float* y, int64_t n) {
  const auto* b = static_cast<const uint8_t*>(src);
  for (int64_t i = 0; i < n / kQK; ++i, b += 82) {
    const float d = rdf16(b);
    const uint8_t* qs = b + 2;
    const uint8_t* signs = b + 34;
    const uint8_t* qh = b + 66;
    const uint8_t* scales = b + 74;
    for (int ib = 0; ib < 8; ++ib, qs += 4, signs += 4) {
      const float db[2] = {d * (0.5f + float(scales[ib] & 0xF)) * 0.25f, d * (0.5f + float(scales[ib] >> 4)) * 0.25f};
      for (int l = 0; l < 4; ++l, y += 8) {
        const float dl = db[l / 2];
        const uint64_t grid = kIq2sGrid[qs[l] | ((qh[ib] << (8 - 2 * l)) & 0x300)];
        for (int j = 0; j < 8; ++j) y[j] = dl * float(grid_u8(grid, j)) * sign_of(signs[l], j);
      }
    }
  }
}

// IQ3_XXS {f16 d; u8 qs[64]; u32 scales_and_signs[8]}: 8 grid indices (4 values each) per 32 elements, then a u32
// of 4 x 7-bit sign indices and a 4-bit scale; x = (d * (0.5 + s) * 0.5) * grid * sign.
void iq3_xxs_row(const void* src, float* y, int64_t n) {
  const auto* b = static_cast<const uint8_t*>(src);
  for (int64_t i = 0; i < n / kQK; ++i, b += 98) {
    const float d = rdf16(b);
    const uint8_t* qs = b + 2;
    const uint8_t* ss = b + 66;
    for (int ib = 0; ib < 8; ++ib, qs += 8) {
      const uint32_t aux = rd32(ss + 4 * ib);
      const float db = d * (0.5f + float(aux >> 28)) * 0.5f;
      for (int l = 0; l < 4; ++l, y += 8) {
        const uint8_t signs = kKsignsIq2xs[(aux >> (7 * l)) & 127];
        const uint32_t g1 = kIq3xxsGrid[qs[2 * l]], g2 = kIq3xxsGrid[qs[2 * l + 1]];
        for (int j = 0; j < 4; ++j) {
          y[j] = db * float(grid_u8(g1, j)) * sign_of(signs, j);
          y[j + 4] = db * float(grid_u8(g2, j)) * sign_of(signs, j + 4);
        }
      }
    }
  }
}

// IQ3_S {f16 d; u8 qs[64]; u8 qh[8]; u8 signs[32]; u8 scales[4]}: 9-bit grid index = qs | 1 bit of qh << 8;
// x = (d * (1 + 2 * s)) * grid * sign, one 4-bit scale per 32 elements.
void iq3_s_row(const void* src, float* y, int64_t n) {
  const auto* b = static_cast<const uint8_t*>(src);
  for (int64_t i = 0; i < n / kQK; ++i, b += 110) {
    const float d = rdf16(b);
    const uint8_t* qs = b + 2;
    const uint8_t* qh = b + 66;
    const uint8_t* signs = b + 74;
    const uint8_t* scales = b + 106;
    for (int ib = 0; ib < 8; ++ib, qs += 8, signs += 4) {
      const int s = (ib % 2 == 0) ? (scales[ib / 2] & 0xF) : (scales[ib / 2] >> 4);
      const float db = d * float(1 + 2 * s);
      const int h = qh[ib];
      for (int l = 0; l < 4; ++l, y += 8) {
        const uint32_t g1 = kIq3sGrid[qs[2 * l] | ((h << (8 - 2 * l)) & 256)];
        const uint32_t g2 = kIq3sGrid[qs[2 * l + 1] | ((h << (7 - 2 * l)) & 256)];
        for (int j = 0; j < 4; ++j) {
          y[j] = db * float(grid_u8(g1, j)) * sign_of(signs[l], j);
          y[j + 4] = db * float(grid_u8(g2, j)) * sign_of(signs[l], j + 4);
        }
      }
    }
  }
}

// IQ1_S {f16 d; u8 qs[32]; u16 qh[8]}: 11-bit grid index (values -1, 0, 1) = qs | 3 bits of qh << 8; qh also holds a
// 3-bit scale (bits 12..14) and the delta's sign (bit 15); x = (d * (2 * s + 1)) * (grid + delta).
void iq1_s_row(const void* src, float* y, int64_t n) {
  const auto* b = static_cast<const uint8_t*>(src);
  for (int64_t i = 0; i < n / kQK; ++i, b += 50) {
    const float d = rdf16(b);
    const uint8_t* qs = b + 2;
    for (int ib = 0; ib < 8; ++ib, qs += 4) {
      const uint16_t qh = rd16(b + 34 + 2 * ib);
      const float dl = d * float(2 * ((qh >> 12) & 7) + 1);
      const float delta = (qh & 0x8000) ? -kIq1sDelta : kIq1sDelta;
      for (int l = 0; l < 4; ++l, y += 8) {
        const uint64_t grid = kIq1sGrid[qs[l] | (((qh >> (3 * l)) & 7) << 8)];
        for (int j = 0; j < 8; ++j) y[j] = dl * (float(int8_t(grid_u8(grid, j))) + delta);
      }
    }
  }
}

// IQ1_M {u8 qs[32]; u8 qh[16]; u16 scales[4]}: the f16 super-scale is the top nibbles of the 4 scale words; each word
// holds four 3-bit sub-scales (one per 16 elements). qh: per 8 elements 3 index bits and a delta sign bit.
void iq1_m_row(const void* src, float* y, int64_t n) {
  const auto* b = static_cast<const uint8_t*>(src);
  for (int64_t i = 0; i < n / kQK; ++i, b += 56) {
    const uint8_t* qs = b;
    const uint8_t* qh = b + 32;
    uint16_t sc[4];
    for (int k = 0; k < 4; ++k) sc[k] = rd16(b + 48 + 2 * k);
    const uint16_t dbits = uint16_t((sc[0] >> 12) | ((sc[1] >> 8) & 0x00F0) | ((sc[2] >> 4) & 0x0F00) | (sc[3] & 0xF000));
    const float d = f16_to_f32(dbits);
    for (int ib = 0; ib < 8; ++ib, qs += 4, qh += 2) {
      const int sh = 6 * (ib % 2);
      const float dl1 = d * float(2 * ((sc[ib / 2] >> sh) & 7) + 1);
      const float dl2 = d * float(2 * ((sc[ib / 2] >> (sh + 3)) & 7) + 1);
      const int idx[4] = {qs[0] | ((qh[0] << 8) & 0x700), qs[1] | ((qh[0] << 4) & 0x700),
                          qs[2] | ((qh[1] << 8) & 0x700), qs[3] | ((qh[1] << 4) & 0x700)};
      // ggml's dequantize_row_iq1_m uses IQ1S_DELTA (equal to IQ1M_DELTA).
      const float delta[4] = {(qh[0] & 0x08) ? -kIq1sDelta : kIq1sDelta, (qh[0] & 0x80) ? -kIq1sDelta : kIq1sDelta,
                              (qh[1] & 0x08) ? -kIq1sDelta : kIq1sDelta, (qh[1] & 0x80) ? -kIq1sDelta : kIq1sDelta};
      for (int l = 0; l < 4; ++l, y += 8) {
        const float dl = l < 2 ? dl1 : dl2;
        const uint64_t grid = kIq1sGrid[idx[l]];
        for (int j = 0; j < 8; ++j) y[j] = dl * (float(int8_t(grid_u8(grid, j))) + delta[l]);
      }
    }
  }
}

// IQ4_XS {f16 d; u16 scales_h; u8 scales_l[4]; u8 qs[128]}: 6-bit scale per 32 (low 4 bits in scales_l, high 2 in
// scales_h), biased by 32; x = (d * (ls - 32)) * kvalues[nibble].
void iq4_xs_row(const void* src, float* y, int64_t n) {
  const auto* b = static_cast<const uint8_t*>(src);
  for (int64_t i = 0; i < n / kQK; ++i, b += 136) {
    const float d = rdf16(b);
    const uint16_t scales_h = rd16(b + 2);
    const uint8_t* scales_l = b + 4;
    const uint8_t* qs = b + 8;
    for (int ib = 0; ib < 8; ++ib, qs += 16, y += 32) {
      const int ls = ((scales_l[ib / 2] >> (4 * (ib % 2))) & 0xF) | (((scales_h >> (2 * ib)) & 3) << 4);
      const float dl = d * float(ls - 32);
      for (int j = 0; j < 16; ++j) {
        y[j] = dl * float(kValuesIq4nl[qs[j] & 0xF]);
        y[j + 16] = dl * float(kValuesIq4nl[qs[j] >> 4]);
      }
    }
  }
}

// ---------------------------------------------------------------------------------------------- the table

constexpr DType Q8_0 = DType::Q8_0, Q8_K = DType::Q8_K, F32 = DType::F32;
constexpr QuantFormat kFormats[] = {
    {DType::F32, 1, 4, f32_to_f32, F32},
    {DType::F16, 1, 2, f16_row, F32},
    {DType::BF16, 1, 2, bf16_row, F32},
    {DType::F8_E4M3, 1, 1, f8e4m3_row, F32},
    {DType::Q4_0, 32, 18, q4_0_row, Q8_0},
    {DType::Q4_1, 32, 20, q4_1_row, Q8_0},
    {DType::Q5_0, 32, 22, q5_0_row, Q8_0},
    {DType::Q5_1, 32, 24, q5_1_row, Q8_0},
    {DType::Q8_0, 32, 34, q8_0_row, Q8_0},
    {DType::IQ4_NL, 32, 18, iq4_nl_row, Q8_0},
    {DType::Q2_K, 256, 84, q2_k_row, Q8_K},
    {DType::Q3_K, 256, 110, q3_k_row, Q8_K},
    {DType::Q4_K, 256, 144, q4_k_row, Q8_K},
    {DType::Q5_K, 256, 176, q5_k_row, Q8_K},
    {DType::Q6_K, 256, 210, q6_k_row, Q8_K},
    {DType::IQ2_XXS, 256, 66, iq2_xxs_row, Q8_K},
    {DType::IQ2_XS, 256, 74, iq2_xs_row, Q8_K},
    {DType::IQ3_XXS, 256, 98, iq3_xxs_row, Q8_K},
    {DType::IQ1_S, 256, 50, iq1_s_row, Q8_K},
    {DType::IQ3_S, 256, 110, iq3_s_row, Q8_K},
    {DType::IQ2_S, 256, 82, iq2_s_row, Q8_K},
    {DType::IQ4_XS, 256, 136, iq4_xs_row, Q8_K},
    {DType::IQ1_M, 256, 56, iq1_m_row, Q8_K},
};

// ---------------------------------------------------------------------------------------------- activations

// ggml's nearest_int: round to nearest, ties to even, via the 1.5 * 2^23 magic number (|v| <= 2^22).
inline int nearest_int(float v) {
  const float t = v + 12582912.f;
  int32_t i;
  std::memcpy(&i, &t, 4);
  return (i & 0x007fffff) - 0x00400000;
}

// quantize_row_q8_0_ref: d = amax / 127, q = roundf(x / d) (half away from zero) computed as x * (1 / d).
void quantize_q8_0(const float* x, BlockQ8_0* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, x += 32) {
    float amax = 0.0f;
    for (int j = 0; j < 32; ++j) {
      const float a = std::fabs(x[j]);
      amax = amax > a ? amax : a;
    }
    const float d = amax / 127;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    y[i].d = f32_to_f16(d);
    for (int j = 0; j < 32; ++j) y[i].q[j] = int8_t(std::roundf(x[j] * id));
  }
}

// quantize_row_q8_K_ref: scale from the signed value of largest magnitude (first one on ties), iscale = -127 / max,
// q = min(127, nearest_int(iscale * x)), d = 1 / iscale (so d has the opposite sign of max). An all-zero block is
// d = 0, q = 0, and (unlike ggml, which leaves them unwritten) bsums = 0.
void quantize_q8_k(const float* x, BlockQ8_K* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, x += kQK) {
    float max = 0, amax = 0;
    for (int j = 0; j < kQK; ++j) {
      const float a = std::fabs(x[j]);
      if (a > amax) { amax = a; max = x[j]; }
    }
    if (amax == 0.0f) {
      y[i].d = 0;
      std::memset(y[i].q, 0, sizeof(y[i].q));
      std::memset(y[i].bsums, 0, sizeof(y[i].bsums));
      continue;
    }
    const float iscale = -127.f / max;
    for (int j = 0; j < kQK; ++j) {
      const int v = nearest_int(iscale * x[j]);
      y[i].q[j] = int8_t(v < 127 ? v : 127);
    }
    for (int j = 0; j < kQK / 16; ++j) {
      int sum = 0;
      for (int k = 0; k < 16; ++k) sum += y[i].q[16 * j + k];
      y[i].bsums[j] = int16_t(sum);
    }
    y[i].d = 1 / iscale;
  }
}

}  // namespace

const QuantFormat* quant_format(DType t) {
  for (const auto& f : kFormats) if (f.type == t) return &f;
  return nullptr;
}

int64_t row_bytes(DType t, int64_t cols) {
  if (t == DType::Q8_K) {  // the activation-only format
    DS_CHECK(cols >= 0 && cols % 256 == 0, "row_bytes: a Q8_K row of ", cols, " columns is not a whole number of 256-element blocks");
    return cols / 256 * int64_t(sizeof(BlockQ8_K));
  }
  const QuantFormat* f = quant_format(t);
  DS_CHECK(f, "row_bytes: ", dtype_name(t), " is not a weight or activation format");
  DS_CHECK(cols >= 0 && cols % f->block == 0, "row_bytes: a ", dtype_name(t), " row of ", cols,
           " columns is not a whole number of ", f->block, "-element blocks");
  return cols / f->block * f->block_bytes;
}

void quantize_act(DType act, const float* x, void* out, int64_t n) {
  if (act == DType::Q8_0) {
    DS_CHECK(n % 32 == 0, "quantize_act: Q8_0 needs a multiple of 32 elements, got ", n);
    quantize_q8_0(x, static_cast<BlockQ8_0*>(out), n / 32);
  } else if (act == DType::Q8_K) {
    DS_CHECK(n % kQK == 0, "quantize_act: Q8_K needs a multiple of 256 elements, got ", n);
    quantize_q8_k(x, static_cast<BlockQ8_K*>(out), n / kQK);
  } else {
    fail("quantize_act: ", dtype_name(act), " is not an activation block format (Q8_0 or Q8_K)");
  }
}

}  // namespace ds
