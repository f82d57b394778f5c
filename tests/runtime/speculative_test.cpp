// SPDX-License-Identifier: MIT
// Speculative decoding (runtime/speculative.h) on the tiny-v3 fixture (it has an MTP layer):
// a verify chunk's rows are the rows token-by-token decoding gives (bitwise on the cpu backend, the property that
// keeps greedy output unchanged, with f32, bf16 and fp8 cache rows; within 1e-4 on the scalar reference). Sampling: speculative_sampling_test.cpp.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>

#include "base/kv_rows.h"
#include "runtime/engine.h"
#include "runtime/session.h"
#include "runtime/speculative.h"

namespace ds::test {
namespace {

const std::string kTinyV3 = std::string(DS_SOURCE_DIR) + "/tests/fixtures/models/tiny-v3";

std::unique_ptr<rt::Engine> load(const std::string& backend, ops::Precision prec, DType kv = DType::F32) {
  rt::EngineOptions o;
  o.backend = backend;
  o.threads = 1;
  o.precision = prec;
  o.kv_dtype = kv;
  return rt::Engine::load(kTinyV3, o);
}

std::vector<int32_t> prompt(int n, int64_t V) {
  std::vector<int32_t> p;
  for (int i = 0; i < n; ++i) p.push_back(int32_t((i * 131 + 7) % V));
  return p;
}

struct SpecCase {
  const char* backend;
  ops::Precision prec;
  DType kv;
};

TEST(Speculative, VerifyChunkRowsEqualDecodedRows) {
  // bf16 / fp8 cache rows (--kv-dtype) too: a verify chunk reads the same stored rows its tokens read one by one.
  const SpecCase cases[] = {{"cpu", ops::Precision::F32, DType::F32}, {"cpu", ops::Precision::Fast, DType::F32},
                            {"ref", ops::Precision::F32, DType::F32}, {"cpu", ops::Precision::Fast, DType::BF16},
                            {"cpu", ops::Precision::Fast, DType::F8_E4M3}};
  for (const SpecCase& sc : cases) {
    const char* backend = sc.backend;
    const ops::Precision prec = sc.prec;
    auto e = load(backend, prec, sc.kv);
    const int64_t V = e->config().vocab_size;
    for (int chunk = 2; chunk <= 5; ++chunk) {
      const std::vector<int32_t> p = prompt(19, V), next = {5, 900, 33, 33, 1000};
      rt::Session one(*e), many(*e);
      one.prefill(p);
      many.prefill(p);
      std::vector<float> want;
      for (int k = 0; k < chunk; ++k) {
        const auto l = one.decode(next[size_t(k)]);
        want.insert(want.end(), l.begin(), l.end());
      }
      const auto got = many.prefill(std::vector<int32_t>(next.begin(), next.begin() + chunk), true);
      ASSERT_EQ(got.size(), want.size());
      const std::string tag = std::string(backend) + (prec == ops::Precision::F32 ? " f32" : " fast") + ", kv " +
                              kv_dtype_name(sc.kv) + ", chunk " + std::to_string(chunk);
      if (std::string(backend) == "cpu") {
        EXPECT_EQ(0, std::memcmp(got.data(), want.data(), got.size() * 4)) << tag << ": not bitwise equal";
      } else {
        double d = 0;
        for (size_t i = 0; i < got.size(); ++i) d = std::max(d, double(std::fabs(got[i] - want[i])));
        EXPECT_LE(d, 1e-4) << tag;
      }
    }
  }
}

}  // namespace
}  // namespace ds::test
