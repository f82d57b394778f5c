// SPDX-License-Identifier: MIT
// KV cache rows stored as bf16 or fp8 (--kv-dtype, base/kv_rows.h) on the fixtures, MLA (tiny-v3, tiny-v2-lite) and
// grouped-query (tiny-qwen2, tiny-llama, tiny-qwen3), in fast precision (which a lower cache format needs), against
// the fp32 reference at the fixtures' fast bar (cosine >= 0.999 per row, argmax agreement >= 95%), for a prefill and
// for token-by-token decoding (every row then read back from the cache).
//
// Not every fixture meets the bar; the bar stays as it is and each case says what it meets (measured here, cpu):
//                 bf16: min cosine, argmax           fp8: min cosine, argmax      (f32 cache: min cosine, argmax)
//   tiny-v2-lite  0.999994  47/48  bar               0.9942  45/48  reported      0.999997  48/48
//   tiny-qwen2    0.999988  40/40  bar               0.99952 39/40  bar           0.999991  40/40
//   tiny-qwen3    0.999886  40/40  bar               0.9943  32/40  reported      0.999888  40/40
//   tiny-llama    0.999748  37/40  cosine only       0.9839  31/40  reported      0.999776  40/40
//   tiny-v3       0.9527    42/48  reported          0.8409  40/48  reported      0.999994  47/48
// The cache format alone accounts for the gap (the same figures within 1e-4 against the f32 cache's logits): these
// tiny models carry logit gaps of 0.001-0.01 between their top tokens, and tiny-v3's near-tied expert choices flip
// under any bf16-sized change ahead of its routers (docs/ARCHITECTURE.md, numerics policy). Reported cases print their
// figures and skip, visibly. Decoding agrees with prefilling: bitwise on the grouped-query fixtures in both formats,
// within 1e-3 on tiny-v2-lite with bf16 (1.6e-4 measured); tiny-v3's expert flips move it by 2e-3 to 8e-3. --precision f32 refuses a lower cache format. DS_PRINT_KV=1 prints every case's figures.
#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>

#include "base/kv_rows.h"
#include "expect_error.h"
#include "golden/golden_checks.h"
#include "runtime/engine.h"
#include "runtime/session.h"

namespace ds::test {
namespace {

enum class Bar { Full, CosineOnly, Reported };
// Within1e3: the fixtures' fp32 bar (README: max |logit difference| <= 1e-3) between the two forms, which sum in
// different orders (absorbed decode vs the multi-head prefill: 1.6e-4 on tiny-v2-lite with bf16 rows); a row read
// back in another format than it was written in is off by far more.
enum class Consistency { Bitwise, Within1e3, Reported };

struct Case {
  std::string fixture;
  std::string backend;
  DType kv;
  Bar bar;
  Consistency decode_vs_prefill;
};
void PrintTo(const Case& c, std::ostream* os) {
  *os << c.fixture << " on " << c.backend << ", " << kv_dtype_name(c.kv);
}

class KvDtype : public ::testing::TestWithParam<Case> {};

std::unique_ptr<rt::Engine> load(const Case& c) {
  rt::EngineOptions o;
  o.backend = c.backend;
  o.precision = ops::Precision::Fast;
  o.kv_dtype = c.kv;
  return rt::Engine::load(fixture_dir(c.fixture), o);
}

// The fast bar, as far as the case meets it; the figures are printed where it does not (and under DS_PRINT_KV).
void expect_fast_bar(const Case& c, const char* how, const std::vector<float>& got, const std::vector<float>& want,
                     int64_t rows, int64_t V) {
  ASSERT_EQ(got.size(), want.size());
  double worst = 1.0;
  int agree = 0;
  for (int64_t t = 0; t < rows; ++t) {
    const double cs = cosine(got.data() + t * V, want.data() + t * V, size_t(V));
    ASSERT_FALSE(std::isnan(cs)) << "position " << t << ": logits not finite";
    worst = std::min(worst, cs);
    agree += argmax(got.data() + t * V, V) == argmax(want.data() + t * V, V);
  }
  char fig[160];
  std::snprintf(fig, sizeof fig, "kv %s %s on %s, %s: min cosine %.6f, argmax agreement %d/%lld",
                kv_dtype_name(c.kv), c.fixture.c_str(), c.backend.c_str(), how, worst, agree, (long long)rows);
  if (std::getenv("DS_PRINT_KV") || c.bar == Bar::Reported) std::printf("%s\n", fig);
  switch (c.bar) {
    case Bar::Full: expect_fast_agreement(got, want, rows, V); break;
    case Bar::CosineOnly: EXPECT_GE(worst, 0.999) << fig; break;
    case Bar::Reported: GTEST_SKIP() << "below the fast bar (figures reported, not tested): " << fig;
  }
}

TEST_P(KvDtype, PrefillAgainstReference) {
  const Case c = GetParam();
  auto e = load(c);
  const auto tokens = read_tokens(fixture_dir(c.fixture) + "/tokens.npy");
  const auto want = io::npy_read(fixture_dir(c.fixture) + "/logits.npy").to_f32();
  rt::Session s(*e);
  expect_fast_bar(c, "prefill", s.prefill(tokens, true), want, int64_t(tokens.size()), e->config().vocab_size);
}

TEST_P(KvDtype, DecodeAgainstReference) {
  const Case c = GetParam();
  auto e = load(c);
  const auto tokens = read_tokens(fixture_dir(c.fixture) + "/tokens.npy");
  const auto want = io::npy_read(fixture_dir(c.fixture) + "/logits.npy").to_f32();
  rt::Session s(*e);
  std::vector<float> got;
  for (int32_t t : tokens) {
    const auto l = s.decode(t);
    got.insert(got.end(), l.begin(), l.end());
  }
  expect_fast_bar(c, "decode", got, want, int64_t(tokens.size()), e->config().vocab_size);
}

// Decoding reads back the rows a prefill stored, in the same format.
TEST_P(KvDtype, DecodeEqualsPrefill) {
  const Case c = GetParam();
  auto e = load(c);
  const auto tokens = read_tokens(fixture_dir(c.fixture) + "/tokens.npy");
  const int64_t V = e->config().vocab_size;
  rt::Session a(*e), b(*e);
  const auto all = a.prefill(tokens, true);
  double worst = 0;
  for (size_t i = 0; i < tokens.size(); ++i) {
    const auto row = b.decode(tokens[i]);
    const double d = max_abs_diff(row.data(), all.data() + int64_t(i) * V, size_t(V));
    worst = std::max(worst, d);
    if (c.decode_vs_prefill == Consistency::Bitwise)
      EXPECT_EQ(0, std::memcmp(row.data(), all.data() + int64_t(i) * V, size_t(V) * 4)) << "position " << i;
    else if (c.decode_vs_prefill == Consistency::Within1e3)
      EXPECT_LE(d, 1e-3) << "position " << i;
  }
  char fig[160];
  std::snprintf(fig, sizeof fig, "kv %s %s on %s: decode vs prefill max |diff| %.3g", kv_dtype_name(c.kv),
                c.fixture.c_str(), c.backend.c_str(), worst);
  if (std::getenv("DS_PRINT_KV") || c.decode_vs_prefill == Consistency::Reported) std::printf("%s\n", fig);
  if (c.decode_vs_prefill == Consistency::Reported) GTEST_SKIP() << "figure reported, not tested: " << fig;
}

std::vector<Case> cases() {
  using B = Bar;
  using C = Consistency;
  const DType bf16 = DType::BF16, fp8 = DType::F8_E4M3;
  return {
      {"tiny-v2-lite", "cpu", bf16, B::Full, C::Within1e3},     {"tiny-v2-lite", "cpu", fp8, B::Reported, C::Reported},
      {"tiny-qwen2", "cpu", bf16, B::Full, C::Bitwise},         {"tiny-qwen2", "cpu", fp8, B::Full, C::Bitwise},
      {"tiny-qwen3", "cpu", bf16, B::Full, C::Bitwise},         {"tiny-qwen3", "cpu", fp8, B::Reported, C::Bitwise},
      {"tiny-llama", "cpu", bf16, B::CosineOnly, C::Bitwise},   {"tiny-llama", "cpu", fp8, B::Reported, C::Bitwise},
      {"tiny-v3", "cpu", bf16, B::Reported, C::Reported},       {"tiny-v3", "cpu", fp8, B::Reported, C::Reported},
      // The reference backend through the same model code (kv_write / kv_read / attention on stored rows).
      {"tiny-qwen2", "ref", bf16, B::Full, C::Bitwise},         {"tiny-qwen2", "ref", fp8, B::Full, C::Bitwise},
      {"tiny-v2-lite", "ref", bf16, B::Full, C::Reported},
  };
}

INSTANTIATE_TEST_SUITE_P(Fixtures, KvDtype, ::testing::ValuesIn(cases()), [](const auto& info) {
  std::string n = info.param.fixture + "_" + info.param.backend + "_" + kv_dtype_name(info.param.kv);
  for (char& ch : n) if (ch == '-') ch = '_';
  return n;
});

TEST(KvDtypeOptions, F32PrecisionRefusesLowerCache) {
  for (DType kv : {DType::BF16, DType::F8_E4M3}) {
    rt::EngineOptions o;
    o.precision = ops::Precision::F32;
    o.kv_dtype = kv;
    EXPECT_TRUE(throws_with([&] { rt::Engine::load(fixture_dir("tiny-v3"), o); },
                            {std::string("--kv-dtype ") + kv_dtype_name(kv), "--precision fast"}));
  }
  rt::EngineOptions o;
  o.kv_dtype = DType::F16;
  EXPECT_TRUE(throws_with([&] { rt::Engine::load(fixture_dir("tiny-v3"), o); }, {"--kv-dtype", "f32, bf16, fp8"}));
}

}  // namespace
}  // namespace ds::test
