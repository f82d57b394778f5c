// SPDX-License-Identifier: MIT
// Errors: every user-facing failure is a ds::Error whose message names the file, tensor, field or
// parameter and what was expected. Thrown inside the engine, caught at the CLI/server boundary.
#pragma once
#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>

namespace ds {

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& msg) : std::runtime_error(msg) {}
};

namespace detail {
template <typename... Args>
std::string concat(Args&&... args) {
  std::ostringstream os;
  (os << ... << std::forward<Args>(args));
  return os.str();
}
}  // namespace detail

// fail("tensor ", name, ": expected ", n, " rows") throws ds::Error with the concatenated message.
template <typename... Args>
[[noreturn]] void fail(Args&&... args) {
  throw Error(detail::concat(std::forward<Args>(args)...));
}

}  // namespace ds

// DS_CHECK(cond, msg parts...): a user-facing check (bad input), throws ds::Error.
#define DS_CHECK(cond, ...)          \
  do {                               \
    if (!(cond)) ::ds::fail(__VA_ARGS__); \
  } while (0)

// DS_ASSERT(cond): an internal invariant (a bug if it fires), reports the location.
#define DS_ASSERT(cond)                                                                 \
  do {                                                                                  \
    if (!(cond)) ::ds::fail("internal error: ", #cond, " at ", __FILE__, ":", __LINE__); \
  } while (0)
