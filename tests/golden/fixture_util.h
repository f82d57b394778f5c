// SPDX-License-Identifier: MIT
// Helpers for tests over the checked-in model fixtures (tests/fixtures/models, from the HF reference).
#pragma once
#include <cmath>
#include <string>
#include <vector>

#include "io/npy.h"

namespace ds::test {

inline std::string fixture_dir(const std::string& name) { return std::string(DS_SOURCE_DIR) + "/tests/fixtures/models/" + name; }

inline std::vector<int32_t> read_tokens(const std::string& path) {
  std::vector<int32_t> r;
  for (int64_t t : io::npy_read(path).to_i64()) r.push_back(int32_t(t));
  return r;
}

inline double max_abs_diff(const float* a, const float* b, size_t n) {
  double m = 0;
  for (size_t i = 0; i < n; ++i) m = std::max(m, double(std::fabs(a[i] - b[i])));
  return m;
}

inline double cosine(const float* a, const float* b, size_t n) {
  double ab = 0, aa = 0, bb = 0;
  for (size_t i = 0; i < n; ++i) { ab += double(a[i]) * b[i]; aa += double(a[i]) * a[i]; bb += double(b[i]) * b[i]; }
  return ab / std::sqrt(aa * bb);
}

inline int64_t argmax(const float* x, int64_t n) {
  int64_t b = 0;
  for (int64_t i = 1; i < n; ++i) if (x[i] > x[b]) b = i;
  return b;
}

}  // namespace ds::test
