// SPDX-License-Identifier: MIT
// Helpers for tests over the checked-in model fixtures (tests/fixtures/models, from the HF reference).
#pragma once
#include <algorithm>
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

// Largest |a - b|; +inf when any value on either side is not finite, so that no tolerance accepts a NaN or an inf
// (std::max(m, NaN) would keep m and let a NaN row pass).
inline double max_abs_diff(const float* a, const float* b, size_t n) {
  double m = 0;
  for (size_t i = 0; i < n; ++i) {
    if (!std::isfinite(a[i]) || !std::isfinite(b[i])) return INFINITY;
    m = std::max(m, std::fabs(double(a[i]) - double(b[i])));
  }
  return m;
}

// Cosine similarity; NaN (which fails every >= bound) when a value is not finite or a row is all zero.
inline double cosine(const float* a, const float* b, size_t n) {
  double ab = 0, aa = 0, bb = 0;
  for (size_t i = 0; i < n; ++i) {
    if (!std::isfinite(a[i]) || !std::isfinite(b[i])) return NAN;
    ab += double(a[i]) * b[i]; aa += double(a[i]) * a[i]; bb += double(b[i]) * b[i];
  }
  return aa > 0 && bb > 0 ? ab / std::sqrt(aa * bb) : NAN;
}

inline int64_t argmax(const float* x, int64_t n) {
  int64_t b = 0;
  for (int64_t i = 1; i < n; ++i) if (x[i] > x[b]) b = i;
  return b;
}

}  // namespace ds::test
