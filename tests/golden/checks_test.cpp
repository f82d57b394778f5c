// SPDX-License-Identifier: MIT
// The comparisons every reference test relies on must fail on non-finite values on either side: a NaN logit (or a
// NaN in a reference file) can never be "within 1e-3".
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "failures.h"
#include "golden/golden_checks.h"

namespace ds::test {
namespace {

TEST(Checks, MaxAbsDiffAndCosineRejectNonFinite) {
  const std::vector<float> a = {1.0f, 2.0f, 3.0f};
  for (float bad : {NAN, INFINITY, -INFINITY})
    for (int side = 0; side < 2; ++side)
      for (size_t at = 0; at < a.size(); ++at) {
        std::vector<float> x = a, y = a;
        (side ? y : x)[at] = bad;
        EXPECT_FALSE(max_abs_diff(x.data(), y.data(), x.size()) <= 1e-3) << bad << " side " << side << " at " << at;
        EXPECT_FALSE(cosine(x.data(), y.data(), x.size()) >= 0.999) << bad << " side " << side << " at " << at;
      }
  EXPECT_EQ(max_abs_diff(a.data(), a.data(), a.size()), 0.0);
  EXPECT_NEAR(cosine(a.data(), a.data(), a.size()), 1.0, 1e-12);
  const std::vector<float> zero(3, 0.0f);
  EXPECT_FALSE(cosine(zero.data(), zero.data(), 3) >= 0.999) << "an all-zero row has no direction to agree on";
}

TEST(Checks, RowComparisonsFailOnNaNEitherSide) {
  const int64_t rows = 4, V = 5;
  std::vector<float> want(size_t(rows * V));
  for (size_t i = 0; i < want.size(); ++i) want[i] = float(i % 7) - 3.0f;
  EXPECT_EQ(count_failures([&] { expect_rows_close(want, want, rows, V, 1e-3, "row"); }), 0);
  EXPECT_EQ(count_failures([&] { expect_fast_agreement(want, want, rows, V); }), 0);
  for (int side = 0; side < 2; ++side) {
    std::vector<float> got = want, ref = want;
    (side ? ref : got)[size_t(2 * V + 1)] = NAN;  // one value of one row
    EXPECT_GE(count_failures([&] { expect_rows_close(got, ref, rows, V, 1e-3, "row"); }), 1) << "side " << side;
    EXPECT_GE(count_failures([&] { expect_fast_agreement(got, ref, rows, V); }), 1) << "side " << side;
    std::fill(side ? ref.begin() : got.begin(), side ? ref.end() : got.end(), NAN);  // every value
    EXPECT_GE(count_failures([&] { expect_rows_close(got, ref, rows, V, 1e-3, "row"); }), rows) << "side " << side;
  }
}

}  // namespace
}  // namespace ds::test
