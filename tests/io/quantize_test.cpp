// SPDX-License-Identifier: MIT
// Weight quantisers (base/quantize.h):
//  - bytes equal to ggml's own reference quantisers on committed vectors (tests/fixtures/quant/quantize, written by
//    tools/quant_goldens/make_quantize_vectors.py through libggml-base: quantize_row_<type>_ref, which is what
//    llama-quantize runs without an importance matrix, and ggml's f16 / bf16 row conversions);
//  - quantise -> dequantise (base/quant.h, ggml's dequantisers) stays within a stated relative RMSE on random rows;
//  - exact where the format is exact; errors name the type and the row length.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "base/error.h"
#include "base/quant.h"
#include "base/quantize.h"
#include "expect_error.h"

namespace ds::test {
namespace {

const std::string kDir = std::string(DS_SOURCE_DIR) + "/tests/fixtures/quant/quantize/";

std::vector<uint8_t> read_bytes(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  EXPECT_TRUE(f.good()) << "cannot open " << path;
  return std::vector<uint8_t>(std::istreambuf_iterator<char>(f), {});
}

const DType kTypes[] = {DType::F16,  DType::BF16, DType::Q8_0, DType::Q4_0, DType::Q4_1,
                        DType::Q5_0, DType::Q5_1, DType::Q4_K, DType::Q5_K, DType::Q6_K};

TEST(Quantize, BytesEqualGgmlReferenceQuantisers) {
  const std::vector<uint8_t> raw = read_bytes(kDir + "input.f32");
  ASSERT_EQ(raw.size(), 16u * 256 * 4);
  std::vector<float> x(raw.size() / 4);
  std::memcpy(x.data(), raw.data(), raw.size());
  const int64_t n = 256, rows = int64_t(x.size()) / n;
  for (DType t : kTypes) {
    SCOPED_TRACE(std::string(dtype_name(t)));
    const std::vector<uint8_t> want = read_bytes(kDir + std::string(dtype_name(t)) + ".q");
    const int64_t rb = row_bytes(t, n);
    ASSERT_EQ(int64_t(want.size()), rows * rb);
    std::vector<uint8_t> got(want.size(), 0xAA);
    for (int64_t r = 0; r < rows; ++r) quantize_row(t, x.data() + r * n, got.data() + r * rb, n);
    const QuantFormat* f = quant_format(t);
    int bad_blocks = 0;
    for (size_t b = 0; b < want.size() / size_t(f->block_bytes); ++b) {
      const size_t off = b * size_t(f->block_bytes);
      if (std::memcmp(got.data() + off, want.data() + off, size_t(f->block_bytes)) != 0 && bad_blocks++ < 3)
        ADD_FAILURE() << "block " << b << " (row " << off / size_t(rb) << ") differs from ggml's";
    }
    EXPECT_EQ(bad_blocks, 0);
  }
}

// Relative RMSE (rmse / rms of the input) of quantise -> ggml's dequantisation on gaussian rows of 4096 at four
// magnitudes. Bounds are ~1.2x what these quantisers measure (F16 2.07e-4, BF16 1.67e-3, Q8_0 5.37e-3, Q6_K 0.0178,
// Q5_K 0.0362, Q5_1 0.0377, Q5_0 0.0428, Q4_K 0.0715, Q4_1 0.0783, Q4_0 0.0853), so a regression in the scale
// search shows; and each type must lose something (more than a quarter of its bound), so a test that compares a
// buffer with itself cannot pass.
TEST(Quantize, RoundTripErrorWithinBounds) {
  struct Bound {
    DType t;
    double rel_rmse;
  };
  const Bound bounds[] = {{DType::F32, 0.0},    {DType::F16, 2.5e-4},  {DType::BF16, 2e-3},   {DType::Q8_0, 0.0065},
                          {DType::Q6_K, 0.022}, {DType::Q5_K, 0.044},  {DType::Q5_1, 0.046},  {DType::Q5_0, 0.052},
                          {DType::Q4_K, 0.086}, {DType::Q4_1, 0.094},  {DType::Q4_0, 0.10}};
  std::mt19937 rng(7);
  std::normal_distribution<float> g(0.f, 1.f);
  const int64_t n = 4096;
  std::vector<float> x(n), y(n);
  for (const Bound& b : bounds) {
    SCOPED_TRACE(std::string(dtype_name(b.t)));
    const QuantFormat* f = quant_format(b.t);
    std::vector<uint8_t> q(size_t(row_bytes(b.t, n)));
    double err = 0, ref = 0;
    for (int rep = 0; rep < 8; ++rep) {
      const float scale = std::pow(10.f, float(rep % 4) - 2.f);  // 0.01 .. 10
      for (auto& v : x) v = g(rng) * scale;
      quantize_row(b.t, x.data(), q.data(), n);
      f->to_f32(q.data(), y.data(), n);
      for (int64_t i = 0; i < n; ++i) {
        err += double(y[i] - x[i]) * double(y[i] - x[i]) / double(scale) / double(scale);
        ref += double(x[i]) * double(x[i]) / double(scale) / double(scale);
      }
    }
    const double rel = std::sqrt(err / ref);
    EXPECT_LE(rel, b.rel_rmse);
    if (b.t != DType::F32) EXPECT_GT(rel, b.rel_rmse / 4) << "suspiciously small error: is the format really lossy?";
  }
}

TEST(Quantize, ExactWhereTheFormatIsExact) {
  const int64_t n = 256;
  std::vector<float> x(n), y(n);
  std::vector<uint8_t> q(size_t(n) * 4);
  // bf16-representable values through BF16 and F16-representable ones through F16; anything through F32.
  for (int64_t i = 0; i < n; ++i) x[i] = bf16_to_f32(uint16_t(0x3c00 + i * 37));
  quantize_row(DType::BF16, x.data(), q.data(), n);
  quant_format(DType::BF16)->to_f32(q.data(), y.data(), n);
  EXPECT_EQ(std::memcmp(x.data(), y.data(), size_t(n) * 4), 0);
  for (int64_t i = 0; i < n; ++i) x[i] = f16_to_f32(uint16_t(0x1000 + i * 97));
  quantize_row(DType::F16, x.data(), q.data(), n);
  quant_format(DType::F16)->to_f32(q.data(), y.data(), n);
  EXPECT_EQ(std::memcmp(x.data(), y.data(), size_t(n) * 4), 0);
  // All-zero rows come back as zeros in every format; Q8_0 holds small integers times a power of two exactly.
  std::fill(x.begin(), x.end(), 0.f);
  for (DType t : kTypes) {
    quantize_row(t, x.data(), q.data(), n);
    quant_format(t)->to_f32(q.data(), y.data(), n);
    for (float v : y) ASSERT_EQ(v, 0.f) << dtype_name(t);
  }
  for (int64_t i = 0; i < n; ++i) x[i] = float(int(i % 255) - 127) * 0.5f;
  for (int64_t i = 0; i < n; i += 32) x[i] = 63.5f;  // each block's max: d = 0.5
  quantize_row(DType::Q8_0, x.data(), q.data(), n);
  quant_format(DType::Q8_0)->to_f32(q.data(), y.data(), n);
  for (int64_t i = 0; i < n; ++i) EXPECT_EQ(y[i], x[i]) << i;
}

TEST(Quantize, ErrorsNameTheTypeAndLength) {
  std::vector<float> x(300, 1.f);
  std::vector<uint8_t> q(4096);
  EXPECT_TRUE(throws_with([&] { quantize_row(DType::Q4_K, x.data(), q.data(), 288); }, {"288", "Q4_K", "256"}));
  EXPECT_TRUE(throws_with([&] { quantize_row(DType::Q8_0, x.data(), q.data(), 40); }, {"40", "Q8_0", "32"}));
  EXPECT_TRUE(throws_with([&] { quantize_row(DType::IQ2_XXS, x.data(), q.data(), 256); }, {"IQ2_XXS"}));
  EXPECT_TRUE(throws_with([&] { quantize_row(DType::F8_E4M3, x.data(), q.data(), 256); }, {"F8_E4M3"}));
  EXPECT_TRUE(can_quantize(DType::Q6_K));
  EXPECT_FALSE(can_quantize(DType::Q3_K));
}

}  // namespace
}  // namespace ds::test
