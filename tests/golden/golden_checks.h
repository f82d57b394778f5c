// SPDX-License-Identifier: MIT
// Checks shared by the tests that compare the engine with a reference model (golden fixtures, tiny-R1).
#pragma once
#include <gtest/gtest.h>

#include <cstdint>
#include <vector>

#include "golden/fixture_util.h"
#include "runtime/sampler.h"
#include "runtime/session.h"

namespace ds::test {

// Greedy continuation of `prompt`: `n` argmax tokens (the last one is not fed back).
inline std::vector<int32_t> greedy_continuation(rt::Session& s, const std::vector<int32_t>& prompt, size_t n) {
  const int64_t V = s.engine().config().vocab_size;
  auto logits = s.prefill(prompt);
  std::vector<int32_t> got;
  for (size_t i = 0; i < n; ++i) {
    got.push_back(rt::argmax(logits.data(), V));
    if (i + 1 < n) logits = s.decode(got.back());
  }
  return got;
}

// Every row of `got` and `want` ([rows, V]) within `tol` (max |difference|).
inline void expect_rows_close(const std::vector<float>& got, const std::vector<float>& want, int64_t rows, int64_t V,
                              double tol, const char* what) {
  ASSERT_EQ(got.size(), want.size());
  for (int64_t t = 0; t < rows; ++t)
    EXPECT_LE(max_abs_diff(got.data() + t * V, want.data() + t * V, size_t(V)), tol) << what << " " << t;
}

// The fast-precision bar of the fixtures' README: cosine >= 0.999 per row, same argmax on >= 95% of rows.
inline void expect_fast_agreement(const std::vector<float>& got, const std::vector<float>& want, int64_t rows,
                                  int64_t V) {
  ASSERT_EQ(got.size(), want.size());
  int agree = 0;
  for (int64_t t = 0; t < rows; ++t) {
    EXPECT_GE(cosine(got.data() + t * V, want.data() + t * V, size_t(V)), 0.999) << "position " << t;
    agree += argmax(got.data() + t * V, V) == argmax(want.data() + t * V, V);
  }
  EXPECT_GE(double(agree) / double(rows), 0.95);
}

}  // namespace ds::test
