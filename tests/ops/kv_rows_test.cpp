// SPDX-License-Identifier: MIT
// KV cache row formats (base/kv_rows.h) against computations written independently here: f32 -> e4m3 against the
// nearest value of the exact e4m3 table (ties to the even code, saturation at 448), fp8 rows (one scale per 128
// values) and bf16 rows byte for byte, their read-back values, sizes and the --kv-dtype spelling.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

#include "base/kv_rows.h"
#include "expect_error.h"

namespace ds::test {
namespace {

// The e4m3 code nearest to v (finite), by search over the table: ties to the even code, |v| >= 448 saturates.
uint8_t nearest_e4m3(float v) {
  if (std::isnan(v)) return 0x7f;
  const uint8_t sign = std::signbit(v) ? 0x80 : 0;
  const double a = std::fabs(double(v));
  if (a >= 448.0) return sign | 0x7e;
  int best = 0;
  double err = a;
  for (int c = 1; c <= 0x7e; ++c) {
    const double e = std::fabs(double(kFp8E4M3ToF32[c]) - a);
    if (e < err || (e == err && c % 2 == 0)) { best = c; err = e; }
  }
  return sign | uint8_t(best);
}

TEST(KvRows, F32ToE4m3IsNearestEvenWithSaturation) {
  std::vector<float> xs = {0.0f, -0.0f, 448.0f, -448.0f, 449.0f, 463.9f, 464.0f, 480.0f, 1e30f, -1e30f,
                           std::numeric_limits<float>::infinity(), -std::numeric_limits<float>::infinity(),
                           std::numeric_limits<float>::denorm_min(), 1e-40f, std::ldexp(1.0f, -10),
                           std::ldexp(1.0f, -9), std::ldexp(1.0f, -6)};
  // Every finite e4m3 magnitude, the midpoints between neighbours (ties), and one float either side of each.
  for (int c = 0; c < 0x7e; ++c) {
    const float lo = kFp8E4M3ToF32[c], hi = kFp8E4M3ToF32[c + 1], mid = (lo + hi) / 2;
    for (float v : {lo, mid, std::nextafter(mid, 0.0f), std::nextafter(mid, 1e9f), std::nextafter(lo, 1e9f)})
      xs.insert(xs.end(), {v, -v});
  }
  std::mt19937 g(7);
  for (int i = 0; i < 200000; ++i) {  // log-uniform over [2^-14, 2^10]
    const float v = std::ldexp(std::uniform_real_distribution<float>(1.0f, 2.0f)(g),
                               std::uniform_int_distribution<int>(-14, 9)(g));
    xs.push_back(i % 2 ? v : -v);
  }
  for (float v : xs) ASSERT_EQ(f32_to_fp8_e4m3(v), nearest_e4m3(v)) << "x = " << v;
  EXPECT_EQ(f32_to_fp8_e4m3(std::numeric_limits<float>::quiet_NaN()), 0x7f);
}

TEST(KvRows, RowBytes) {
  EXPECT_EQ(kv_row_bytes(DType::F32, 576), 2304);
  EXPECT_EQ(kv_row_bytes(DType::BF16, 576), 1152);
  EXPECT_EQ(kv_row_bytes(DType::F8_E4M3, 576), 576 + 4 * 5);  // DeepSeek's latent row: 5 tiles (the last: k_pe)
  EXPECT_EQ(kv_row_bytes(DType::F8_E4M3, 1024), 1024 + 4 * 8);
  EXPECT_EQ(kv_row_bytes(DType::BF16, 7), 16);                // padded to 4-byte words
  EXPECT_EQ(kv_row_bytes(DType::F8_E4M3, 7), 8 + 4);
  EXPECT_TRUE(throws_with([] { kv_row_bytes(DType::F16, 8); }, {"F16", "f32, bf16, fp8"}));
}

// fp8 rows byte for byte against the definition computed here: per tile of 128, scale = amax / 448, code = nearest
// e4m3 of x / scale; read back as code value x scale; error within half an e4m3 step.
TEST(KvRows, Fp8RowsMatchIndependentQuantisation) {
  std::mt19937 g(11);
  for (int64_t w : {576, 200, 129, 128, 7}) {
    for (int rep = 0; rep < 20; ++rep) {
      std::vector<float> x(static_cast<size_t>(w));
      for (int64_t i = 0; i < w; ++i) {  // tiles of very different magnitudes, some tiny values inside
        const float mag = std::ldexp(1.0f, int(((i / 128) * 7 + rep) % 23) - 12);
        x[size_t(i)] = std::uniform_real_distribution<float>(-mag, mag)(g) * (i % 17 == 0 ? 1e-4f : 1.0f);
      }
      if (rep == 3) std::fill(x.begin(), x.begin() + std::min<int64_t>(w, 128), 0.0f);  // a zero tile
      std::vector<uint8_t> row(size_t(kv_row_bytes(DType::F8_E4M3, w)), 0xEE);
      kv_encode_row(DType::F8_E4M3, x.data(), w, row.data());
      const int64_t so = (w + 3) / 4 * 4, tiles = (w + 127) / 128;
      ASSERT_EQ(int64_t(row.size()), so + 4 * tiles);
      for (int64_t i = w; i < so; ++i) EXPECT_EQ(row[size_t(i)], 0) << "padding byte " << i;
      std::vector<float> back(static_cast<size_t>(w));
      kv_decode_row(DType::F8_E4M3, row.data(), w, 0, w, back.data());
      for (int64_t k = 0; k < tiles; ++k) {
        const int64_t end = std::min<int64_t>(w, k * 128 + 128);
        float amax = 0;
        for (int64_t i = k * 128; i < end; ++i) amax = std::max(amax, std::fabs(x[size_t(i)]));
        const float scale = amax / 448.0f;
        float stored;
        std::memcpy(&stored, &row[size_t(so + 4 * k)], 4);
        ASSERT_EQ(stored, scale) << "width " << w << " tile " << k;
        for (int64_t i = k * 128; i < end; ++i) {
          const uint8_t want = scale > 0 ? nearest_e4m3(x[size_t(i)] / scale) : 0;
          ASSERT_EQ(row[size_t(i)], want) << "width " << w << " value " << i << " = " << x[size_t(i)];
          ASSERT_EQ(back[size_t(i)], kFp8E4M3ToF32[want] * scale);
          // 3 mantissa bits: relative error <= 2^-4, or half the subnormal step (2^-10 scale) near zero.
          EXPECT_LE(std::fabs(double(back[size_t(i)]) - x[size_t(i)]),
                    std::max(std::fabs(double(x[size_t(i)])) / 16.0, double(scale) / 1024.0) * 1.000001);
        }
      }
      // A slice of the row reads the same values.
      std::vector<float> part(static_cast<size_t>(w - 3));
      kv_decode_row(DType::F8_E4M3, row.data(), w, 3, w - 3, part.data());
      EXPECT_EQ(0, std::memcmp(part.data(), back.data() + 3, part.size() * 4));
    }
  }
}

TEST(KvRows, Bf16RowsRoundToNearestEven) {
  const std::vector<float> x = {1.0f, 1.00390625f, 1.01171875f, -3.14159f, 65504.0f, 1e-30f, 0.0f};
  const int64_t w = int64_t(x.size());
  std::vector<uint8_t> row(size_t(kv_row_bytes(DType::BF16, w)), 0xEE);
  kv_encode_row(DType::BF16, x.data(), w, row.data());
  std::vector<float> back(static_cast<size_t>(w));
  kv_decode_row(DType::BF16, row.data(), w, 0, w, back.data());
  for (int64_t i = 0; i < w; ++i) {
    uint32_t u;
    std::memcpy(&u, &x[size_t(i)], 4);
    const uint32_t r = (u + 0x7fff + ((u >> 16) & 1)) & 0xffff0000u;  // round half to even on the low 16 bits
    float want;
    std::memcpy(&want, &r, 4);
    EXPECT_EQ(back[size_t(i)], want) << x[size_t(i)];
  }
  EXPECT_EQ(back[1], 1.0f) << "a tie goes to the even value";
  EXPECT_EQ(row[14], 0);
  EXPECT_EQ(row[15], 0);
}

TEST(KvRows, DtypeNames) {
  EXPECT_EQ(parse_kv_dtype("f32"), DType::F32);
  EXPECT_EQ(parse_kv_dtype("bf16"), DType::BF16);
  EXPECT_EQ(parse_kv_dtype("fp8"), DType::F8_E4M3);
  EXPECT_STREQ(kv_dtype_name(DType::F8_E4M3), "fp8");
  EXPECT_TRUE(throws_with([] { parse_kv_dtype("fp16"); }, {"--kv-dtype", "fp16", "f32, bf16, fp8"}));
}

}  // namespace
}  // namespace ds::test
