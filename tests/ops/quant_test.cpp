// SPDX-License-Identifier: MIT
// base/quant.h against ggml: every block format's to_f32 bit for bit with ggml's dequantize_row_* on random blocks,
// and quantize_act (Q8_0, Q8_K) byte for byte with ggml's reference quantisers. The vectors are in
// tests/fixtures/quant (made by tools/quant_goldens/make_vectors.py, see its README.md); a missing one fails.
#include "base/quant.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <iterator>
#include <limits>
#include <ostream>
#include <string>
#include <vector>

#include "base/dtype.h"
#include "expect_error.h"

namespace ds {

// Readable parameter values in test listings (ctest shows them); found by argument-dependent lookup.
void PrintTo(DType t, std::ostream* os) { *os << dtype_name(t); }

namespace {

const std::string kDir = std::string(DS_SOURCE_DIR) + "/tests/fixtures/quant/";

// Reads a fixture file; a missing or empty file is a test failure (these vectors are committed).
bool read_file(const std::string& name, std::vector<uint8_t>* out) {
  std::ifstream f(kDir + name, std::ios::binary);
  if (!f) {
    ADD_FAILURE() << "missing fixture " << kDir + name << " (see tests/fixtures/quant/README.md)";
    return false;
  }
  out->assign(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
  if (out->empty()) {
    ADD_FAILURE() << "empty fixture " << kDir + name;
    return false;
  }
  return true;
}

std::vector<float> as_floats(const std::vector<uint8_t>& b) {
  std::vector<float> v(b.size() / 4);
  std::memcpy(v.data(), b.data(), v.size() * 4);
  return v;
}

// Bit-for-bit comparison (NaN-safe: compares encodings); reports the first few differences.
::testing::AssertionResult same_bits(const std::vector<float>& got, const std::vector<float>& want) {
  if (got.size() != want.size())
    return ::testing::AssertionFailure() << "size " << got.size() << " vs " << want.size();
  int bad = 0;
  auto fail = ::testing::AssertionFailure();
  for (size_t i = 0; i < got.size(); ++i) {
    if (f32_to_bits(got[i]) != f32_to_bits(want[i])) {
      if (bad < 5) fail << "\n  [" << i << "] got " << got[i] << " want " << want[i];
      ++bad;
    }
  }
  if (bad) return fail << "\n  " << bad << " of " << got.size() << " values differ";
  return ::testing::AssertionSuccess();
}

struct Expect { DType type; int block, bytes; DType act; };
// ggml's block sizes (ggml-common.h static_asserts) and the activation format each format's dot product takes.
const Expect kWeightFormats[] = {
    {DType::F32, 1, 4, DType::F32},          {DType::F16, 1, 2, DType::F32},
    {DType::BF16, 1, 2, DType::F32},         {DType::F8_E4M3, 1, 1, DType::F32},
    {DType::Q4_0, 32, 18, DType::Q8_0},      {DType::Q4_1, 32, 20, DType::Q8_0},
    {DType::Q5_0, 32, 22, DType::Q8_0},      {DType::Q5_1, 32, 24, DType::Q8_0},
    {DType::Q8_0, 32, 34, DType::Q8_0},      {DType::IQ4_NL, 32, 18, DType::Q8_0},
    {DType::Q2_K, 256, 84, DType::Q8_K},     {DType::Q3_K, 256, 110, DType::Q8_K},
    {DType::Q4_K, 256, 144, DType::Q8_K},    {DType::Q5_K, 256, 176, DType::Q8_K},
    {DType::Q6_K, 256, 210, DType::Q8_K},    {DType::IQ2_XXS, 256, 66, DType::Q8_K},
    {DType::IQ2_XS, 256, 74, DType::Q8_K},   {DType::IQ3_XXS, 256, 98, DType::Q8_K},
    {DType::IQ1_S, 256, 50, DType::Q8_K},    {DType::IQ3_S, 256, 110, DType::Q8_K},
    {DType::IQ2_S, 256, 82, DType::Q8_K},    {DType::IQ4_XS, 256, 136, DType::Q8_K},
    {DType::IQ1_M, 256, 56, DType::Q8_K},
};

TEST(QuantFormat, Descriptors) {
  for (const Expect& e : kWeightFormats) {
    SCOPED_TRACE(std::string(dtype_name(e.type)));
    const QuantFormat* f = quant_format(e.type);
    ASSERT_NE(f, nullptr);
    EXPECT_EQ(f->type, e.type);
    EXPECT_EQ(f->block, e.block);
    EXPECT_EQ(f->block_bytes, e.bytes);
    EXPECT_EQ(f->act, e.act);
    EXPECT_NE(f->to_f32, nullptr);
  }
  // Activation-only blocks and non-float element types are not weight formats.
  for (DType t : {DType::Q8_1, DType::Q8_K, DType::I64, DType::I32, DType::I8, DType::U8, DType::BOOL, DType::F64,
                  DType::F8_E5M2, DType::F8_E8M0}) {
    EXPECT_EQ(quant_format(t), nullptr) << dtype_name(t);
  }
}

TEST(QuantFormat, RowBytes) {
  EXPECT_EQ(row_bytes(DType::F32, 7), 28);
  EXPECT_EQ(row_bytes(DType::BF16, 2048), 4096);
  EXPECT_EQ(row_bytes(DType::F8_E4M3, 7168), 7168);
  EXPECT_EQ(row_bytes(DType::Q8_0, 4096), 4096 / 32 * 34);
  EXPECT_EQ(row_bytes(DType::Q4_K, 7168), 7168 / 256 * 144);
  EXPECT_EQ(row_bytes(DType::IQ1_M, 2048), 8 * 56);
  EXPECT_EQ(row_bytes(DType::Q6_K, 0), 0);
  for (const Expect& e : kWeightFormats) EXPECT_EQ(row_bytes(e.type, 3 * 256), 3 * 256 / e.block * e.bytes);
  EXPECT_TRUE(test::throws_with([] { row_bytes(DType::Q4_K, 100); }, {"Q4_K", "100", "256"}));
  EXPECT_TRUE(test::throws_with([] { row_bytes(DType::Q8_0, 48); }, {"Q8_0", "48", "32"}));
  EXPECT_TRUE(test::throws_with([] { row_bytes(DType::I64, 8); }, {"I64", "not a weight or activation format"}));
  EXPECT_EQ(row_bytes(DType::Q8_K, 512), 2 * 292);  // the activation format has rows too
}

TEST(QuantFormat, PlainTypes) {
  const float f32[] = {1.5f, -0.0f, std::numeric_limits<float>::infinity(), 3.0e-41f};
  float out[4];
  quant_format(DType::F32)->to_f32(f32, out, 4);
  EXPECT_EQ(std::memcmp(out, f32, sizeof(out)), 0);

  const uint16_t f16[] = {0x3c00, 0xc000, 0x0001, 0x7bff, 0x7c00, 0x8000, 0x3555};
  const float f16_want[] = {1.0f, -2.0f, 0x1p-24f, 65504.0f, std::numeric_limits<float>::infinity(), -0.0f,
                            0x1.554p-2f};
  std::vector<float> got(7);
  quant_format(DType::F16)->to_f32(f16, got.data(), 7);
  EXPECT_TRUE(same_bits(got, std::vector<float>(std::begin(f16_want), std::end(f16_want))));

  const uint16_t bf16[] = {0x3f80, 0xc049, 0x0001, 0x7f80, 0x8000};
  const float bf16_want[] = {1.0f, -3.140625f, 0x1p-133f, std::numeric_limits<float>::infinity(), -0.0f};
  got.resize(5);
  quant_format(DType::BF16)->to_f32(bf16, got.data(), 5);
  EXPECT_TRUE(same_bits(got, std::vector<float>(std::begin(bf16_want), std::end(bf16_want))));

  // e4m3fn: no scale applied; 0x38 = 1, 0x7e = 448 (max), 0x01 = 2^-9 (min subnormal), 0xb8 = -1, 0x80 = -0.
  const uint8_t f8[] = {0x38, 0x7e, 0x01, 0xb8, 0x80, 0x3c, 0x7f};
  const float f8_want[] = {1.0f, 448.0f, 0x1p-9f, -1.0f, -0.0f, 1.5f};
  got.resize(7);
  quant_format(DType::F8_E4M3)->to_f32(f8, got.data(), 7);
  EXPECT_TRUE(same_bits(std::vector<float>(got.begin(), got.begin() + 6),
                        std::vector<float>(std::begin(f8_want), std::end(f8_want))));
  EXPECT_TRUE(std::isnan(got[6]));  // 0x7f is NaN
}

class Dequant : public ::testing::TestWithParam<DType> {};

TEST_P(Dequant, BitExactWithGgml) {
  const DType t = GetParam();
  const QuantFormat* f = quant_format(t);
  ASSERT_NE(f, nullptr);
  const std::string name(dtype_name(t));
  std::vector<uint8_t> blocks, want_bytes;
  if (!read_file(name + ".blocks", &blocks) || !read_file(name + ".f32", &want_bytes)) return;
  ASSERT_EQ(blocks.size() % size_t(f->block_bytes), 0u) << name;
  const int64_t n = int64_t(blocks.size()) / f->block_bytes * f->block;
  const std::vector<float> want = as_floats(want_bytes);
  ASSERT_EQ(int64_t(want.size()), n) << name;

  std::vector<float> got(size_t(n), -1.0f);
  f->to_f32(blocks.data(), got.data(), n);
  EXPECT_TRUE(same_bits(got, want)) << name;

  // Blocks at an odd address (GGUF tensor data need not be aligned for the format's fields), one block at a time.
  std::vector<uint8_t> shifted(blocks.size() + 1);
  std::memcpy(shifted.data() + 1, blocks.data(), blocks.size());
  std::fill(got.begin(), got.end(), -1.0f);
  for (int64_t b = 0; b < n / f->block; ++b)
    f->to_f32(shifted.data() + 1 + b * f->block_bytes, got.data() + b * f->block, f->block);
  EXPECT_TRUE(same_bits(got, want)) << name << " (unaligned, block by block)";
}

INSTANTIATE_TEST_SUITE_P(Formats, Dequant,
                         ::testing::Values(DType::Q4_0, DType::Q4_1, DType::Q5_0, DType::Q5_1, DType::Q8_0,
                                           DType::Q2_K, DType::Q3_K, DType::Q4_K, DType::Q5_K, DType::Q6_K,
                                           DType::IQ2_XXS, DType::IQ2_XS, DType::IQ3_XXS, DType::IQ1_S,
                                           DType::IQ4_NL, DType::IQ3_S, DType::IQ2_S, DType::IQ4_XS, DType::IQ1_M),
                         [](const ::testing::TestParamInfo<DType>& i) { return std::string(dtype_name(i.param)); });

struct ActCase { DType act; int block, bytes; };
void PrintTo(const ActCase& c, std::ostream* os) { *os << dtype_name(c.act); }

class QuantizeAct : public ::testing::TestWithParam<ActCase> {
 protected:
  // Loads <act>_act.f32 and <act>_act.blocks; false (with a failure recorded) when either is missing.
  bool load(std::vector<float>* x, std::vector<uint8_t>* want) {
    const ActCase c = GetParam();
    const std::string name(dtype_name(c.act));
    std::vector<uint8_t> xb;
    if (!read_file(name + "_act.f32", &xb) || !read_file(name + "_act.blocks", want)) return false;
    *x = as_floats(xb);
    EXPECT_EQ(x->size() % size_t(c.block), 0u);
    EXPECT_EQ(want->size(), x->size() / size_t(c.block) * size_t(c.bytes));
    return !::testing::Test::HasFailure();
  }
};

TEST_P(QuantizeAct, BitExactWithGgml) {
  const ActCase c = GetParam();
  std::vector<float> x;
  std::vector<uint8_t> want;
  if (!load(&x, &want)) return;
  std::vector<uint8_t> got(want.size(), 0xAB);
  quantize_act(c.act, x.data(), got.data(), int64_t(x.size()));
  int bad_blocks = 0;
  for (size_t b = 0; b < want.size() / size_t(c.bytes); ++b) {
    if (std::memcmp(got.data() + b * c.bytes, want.data() + b * c.bytes, size_t(c.bytes)) != 0) {
      if (bad_blocks < 5) ADD_FAILURE() << dtype_name(c.act) << " block " << b << " differs from ggml's";
      ++bad_blocks;
    }
  }
  EXPECT_EQ(bad_blocks, 0);
}

// Dequantising the activation blocks (d * q) gives x back to within half a step. Q8_0 stores d as f16, so its bound
// is half of the exact step amax / 127 plus |q| times that step's f16 rounding error; Q8_K's d is an fp32 (1 / iscale).
TEST_P(QuantizeAct, RoundTripWithinHalfStep) {
  const ActCase c = GetParam();
  std::vector<float> x;
  std::vector<uint8_t> want;
  if (!load(&x, &want)) return;
  std::vector<uint8_t> blocks(want.size());
  quantize_act(c.act, x.data(), blocks.data(), int64_t(x.size()));
  int bad = 0;
  for (size_t b = 0; b < x.size() / size_t(c.block); ++b) {
    const float* xb = x.data() + b * c.block;
    const uint8_t* blk = blocks.data() + b * c.bytes;
    double d, d_exact;
    const int8_t* q;
    if (c.act == DType::Q8_0) {
      BlockQ8_0 q8;
      std::memcpy(&q8, blk, sizeof(q8));
      d = f16_to_f32(q8.d);
      float amax = 0;
      for (int j = 0; j < 32; ++j) amax = std::max(amax, std::fabs(xb[j]));
      d_exact = amax / 127.0;
      q = reinterpret_cast<const int8_t*>(blk + 2);
    } else {
      float df;
      std::memcpy(&df, blk, 4);
      d = d_exact = df;
      q = reinterpret_cast<const int8_t*>(blk + 4);
      int sum[16] = {};
      for (int j = 0; j < 256; ++j) sum[j / 16] += q[j];
      int16_t bsums[16];
      std::memcpy(bsums, blk + 260, sizeof(bsums));
      for (int j = 0; j < 16; ++j) EXPECT_EQ(bsums[j], sum[j]) << "block " << b << " bsums[" << j << "]";
    }
    for (int j = 0; j < c.block; ++j) {
      const double err = std::fabs(double(xb[j]) - q[j] * d);
      const double bound = 0.5 * std::fabs(d_exact) * (1 + 1e-4) + std::abs(q[j]) * std::fabs(d - d_exact);
      if (!(err <= bound)) {
        if (bad < 5) ADD_FAILURE() << "block " << b << " [" << j << "] x " << xb[j] << " q " << int(q[j]) << " d " << d;
        ++bad;
      }
    }
  }
  EXPECT_EQ(bad, 0);
}

INSTANTIATE_TEST_SUITE_P(Acts, QuantizeAct,
                         ::testing::Values(ActCase{DType::Q8_0, 32, 34}, ActCase{DType::Q8_K, 256, 292}),
                         [](const ::testing::TestParamInfo<ActCase>& i) { return std::string(dtype_name(i.param.act)); });

TEST(QuantizeActErrors, OnlyQ8Blocks) {
  std::vector<float> x(256, 1.0f);
  std::vector<uint8_t> out(1024);
  EXPECT_TRUE(test::throws_with([&] { quantize_act(DType::Q4_K, x.data(), out.data(), 256); }, {"Q4_K"}));
  EXPECT_TRUE(test::throws_with([&] { quantize_act(DType::F32, x.data(), out.data(), 256); }, {"F32"}));
  EXPECT_TRUE(test::throws_with([&] { quantize_act(DType::Q8_0, x.data(), out.data(), 40); }, {"Q8_0", "40"}));
  EXPECT_TRUE(test::throws_with([&] { quantize_act(DType::Q8_K, x.data(), out.data(), 128); }, {"Q8_K", "128"}));
}

}  // namespace
}  // namespace ds
