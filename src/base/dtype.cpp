// SPDX-License-Identifier: MIT
#include "base/dtype.h"

#include <cmath>

namespace ds {

namespace {
struct DTypeInfo { DType t; std::string_view name; int size; };
constexpr DTypeInfo kInfo[] = {
    {DType::F32, "F32", 4},         {DType::F16, "F16", 2},         {DType::BF16, "BF16", 2},
    {DType::F8_E4M3, "F8_E4M3", 1}, {DType::F8_E5M2, "F8_E5M2", 1}, {DType::F64, "F64", 8},
    {DType::I64, "I64", 8},         {DType::I32, "I32", 4},         {DType::I16, "I16", 2},
    {DType::I8, "I8", 1},           {DType::U8, "U8", 1},           {DType::BOOL, "BOOL", 1},
    {DType::U16, "U16", 2},         {DType::U32, "U32", 4},         {DType::U64, "U64", 8},
    {DType::F8_E8M0, "F8_E8M0", 1},
};
constexpr std::string_view kBlockNames[] = {"Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q8_0", "Q8_1", "Q2_K", "Q3_K", "Q4_K",
                                            "Q5_K", "Q6_K", "Q8_K", "IQ2_XXS", "IQ2_XS", "IQ3_XXS", "IQ1_S", "IQ4_NL",
                                            "IQ3_S", "IQ2_S", "IQ4_XS", "IQ1_M"};
static_assert(sizeof(kBlockNames) / sizeof(kBlockNames[0]) == size_t(DType::IQ1_M) - size_t(DType::Q4_0) + 1);

constexpr float pow2(int e) {
  float v = 1.0f;
  for (; e > 0; --e) v *= 2.0f;
  for (; e < 0; ++e) v *= 0.5f;
  return v;
}

constexpr float decode_e4m3(uint8_t b) {
  const int exp = (b >> 3) & 0xf, man = b & 7;
  float v = 0.0f;
  if (exp == 0xf && man == 7) v = __builtin_nanf("");
  else if (exp == 0) v = float(man) * pow2(-9);  // subnormal: man/8 * 2^-6
  else v = float(8 + man) * pow2(exp - 10);      // (1 + man/8) * 2^(exp-7)
  return (b & 0x80) ? -v : v;
}

struct E4M3Table {
  float v[256];
};
constexpr E4M3Table make_e4m3_table() {
  E4M3Table t{};
  for (int i = 0; i < 256; ++i) t.v[i] = decode_e4m3(uint8_t(i));
  return t;
}
constexpr E4M3Table kTable = make_e4m3_table();
}  // namespace

// Constant-initialised: safe to use from any static initialiser.
const float kFp8E4M3ToF32[256] = {
#define DS_ROW(i) kTable.v[i], kTable.v[i + 1], kTable.v[i + 2], kTable.v[i + 3], \
                  kTable.v[i + 4], kTable.v[i + 5], kTable.v[i + 6], kTable.v[i + 7]
    DS_ROW(0),   DS_ROW(8),   DS_ROW(16),  DS_ROW(24),  DS_ROW(32),  DS_ROW(40),  DS_ROW(48),  DS_ROW(56),
    DS_ROW(64),  DS_ROW(72),  DS_ROW(80),  DS_ROW(88),  DS_ROW(96),  DS_ROW(104), DS_ROW(112), DS_ROW(120),
    DS_ROW(128), DS_ROW(136), DS_ROW(144), DS_ROW(152), DS_ROW(160), DS_ROW(168), DS_ROW(176), DS_ROW(184),
    DS_ROW(192), DS_ROW(200), DS_ROW(208), DS_ROW(216), DS_ROW(224), DS_ROW(232), DS_ROW(240), DS_ROW(248),
#undef DS_ROW
};

int dtype_size(DType t) {
  for (const auto& i : kInfo) if (i.t == t) return i.size;
  return 0;
}

std::string_view dtype_name(DType t) {
  for (const auto& i : kInfo) if (i.t == t) return i.name;
  if (is_block_dtype(t)) return kBlockNames[size_t(t) - size_t(DType::Q4_0)];
  return "?";
}

bool is_block_dtype(DType t) { return t >= DType::Q4_0 && t <= DType::IQ1_M; }

bool parse_dtype(std::string_view s, DType* out) {
  for (const auto& i : kInfo) {
    if (i.name == s) { *out = i.t; return true; }
  }
  return false;
}

float f16_to_f32(uint16_t h) {
  const uint32_t sign = uint32_t(h & 0x8000) << 16;
  const int exp = (h >> 10) & 0x1f;
  const uint32_t man = h & 0x3ff;
  if (exp == 0) {
    float v = std::ldexp(float(man), -24);
    return sign ? -v : v;
  }
  if (exp == 31) return bits_to_f32(sign | 0x7f800000u | (man << 13));
  return bits_to_f32(sign | (uint32_t(exp - 15 + 127) << 23) | (man << 13));
}

uint16_t f32_to_f16(float f) {
  // Round to nearest even via the standard bit manipulation.
  const uint32_t u = f32_to_bits(f);
  const uint16_t sign = uint16_t((u >> 16) & 0x8000);
  const uint32_t a = u & 0x7fffffffu;
  if (a > 0x7f800000u) return sign | 0x7e00;   // NaN
  if (a >= 0x477ff000u) return sign | 0x7c00;  // overflow -> inf
  if (a < 0x38800000u) {                       // subnormal or zero
    const float v = bits_to_f32(a) * 16777216.0f;  // * 2^24
    return sign | uint16_t(std::nearbyint(v));
  }
  uint32_t r = a + 0xfffu + ((a >> 13) & 1u);
  return sign | uint16_t((r - 0x38000000u) >> 13);
}

uint8_t f32_to_fp8_e4m3(float f) {
  const uint32_t u = f32_to_bits(f), a = u & 0x7fffffffu;
  if (a > 0x7f800000u) return 0x7f;  // NaN
  const uint8_t sign = uint8_t((u >> 24) & 0x80);
  if (a >= 0x43e00000u) return sign | 0x7e;  // >= 448 (inf included): saturate
  if (a < 0x3c800000u) {                     // below 2^-6: subnormal codes m * 2^-9 (m = 8 is the first normal)
    const float m = std::nearbyint(bits_to_f32(a) * 512.0f);  // exact scaling; ties to even
    return sign | uint8_t(m);
  }
  // Normal: keep 3 of the 23 mantissa bits, rounding the other 20 to nearest even (a carry bumps the exponent).
  const uint32_t r = (a + 0x7ffffu + ((a >> 20) & 1u)) >> 20;  // exponent (bias 127) << 3 | mantissa
  return sign | uint8_t(r - ((127 - 7) << 3));
}

}  // namespace ds
