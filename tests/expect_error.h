// SPDX-License-Identifier: MIT
// Error tests check what the message says, not only that something threw:
//   EXPECT_TRUE(throws_with([&] { ... }, {"context", "8"}));
// passes when the call throws ds::Error whose message contains every one of the given pieces.
#pragma once
#include <gtest/gtest.h>

#include <functional>
#include <initializer_list>
#include <string>

#include "base/error.h"

namespace ds::test {

inline ::testing::AssertionResult throws_with(const std::function<void()>& call,
                                              std::initializer_list<std::string> pieces) {
  try {
    call();
  } catch (const ds::Error& e) {
    const std::string msg = e.what();
    for (const std::string& p : pieces)
      if (msg.find(p) == std::string::npos)
        return ::testing::AssertionFailure() << "the error does not mention '" << p << "': " << msg;
    return ::testing::AssertionSuccess() << msg;
  } catch (const std::exception& e) {
    return ::testing::AssertionFailure() << "threw a non-ds::Error: " << e.what();
  }
  return ::testing::AssertionFailure() << "did not throw";
}

}  // namespace ds::test
