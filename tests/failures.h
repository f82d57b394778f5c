// SPDX-License-Identifier: MIT
// For tests of the tests: how many gtest failures a check reports, without failing the test that runs it.
#pragma once
#include <gtest/gtest-spi.h>
#include <gtest/gtest.h>

#include <functional>

namespace ds::test {

inline int count_failures(const std::function<void()>& check) {
  ::testing::TestPartResultArray results;
  {
    ::testing::ScopedFakeTestPartResultReporter intercept(
        ::testing::ScopedFakeTestPartResultReporter::INTERCEPT_ONLY_CURRENT_THREAD, &results);
    check();
  }
  return results.size();
}

}  // namespace ds::test
