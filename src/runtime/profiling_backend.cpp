// SPDX-License-Identifier: MIT
#include "runtime/profiling_backend.h"

#include <algorithm>
#include <cstdio>
#include <vector>

#include "base/timer.h"

namespace ds::rt {

void ProfilingBackend::timed(const std::string& key, const std::function<void()>& f, double bytes) {
  in_->sync();
  Timer t;
  f();
  in_->sync();
  OpStats& s = stats_[key];
  s.seconds += t.seconds();
  s.calls += 1;
  s.bytes += bytes;
}

namespace {
// Key by shape class: decode (M <= 8) vs prefill, and the weight's [N x K] so each projection shows up apart.
std::string matmul_key(const ops::MatmulParams& p) {
  const int64_t rows = p.w_kn ? p.K : p.N, cols = p.w_kn ? p.N : p.K;
  return std::string(p.M <= 8 ? "M<=8 " : "M>8 ") + (p.w_kn ? "kn " : "") + std::to_string(rows) + "x" +
         std::to_string(cols) + " " + std::string(dtype_name(p.w.dtype));
}
}  // namespace

void ProfilingBackend::matmul(const ops::MatmulParams& p) {
  timed("matmul " + matmul_key(p), [&] { in_->matmul(p); }, double(p.w.bytes()));
}

void ProfilingBackend::matmul_batch(const ops::MatmulParams* ps, size_t n) {
  if (n == 0) return;
  double bytes = 0;
  for (size_t i = 0; i < n; ++i) bytes += double(ps[i].w.bytes());
  timed("matmul x" + std::to_string(n) + " " + matmul_key(ps[0]), [&] { in_->matmul_batch(ps, n); }, bytes);
}

std::string ProfilingBackend::report() const {
  std::vector<std::pair<std::string, OpStats>> v(stats_.begin(), stats_.end());
  std::sort(v.begin(), v.end(), [](const auto& a, const auto& b) { return a.second.seconds > b.second.seconds; });
  double total = 0;
  for (const auto& [k, s] : v) total += s.seconds;
  std::string out;
  char line[256];
  for (const auto& [k, s] : v) {
    std::snprintf(line, sizeof line, "  %-36s %9.2f ms %5.1f%% %7lld calls", k.c_str(), s.seconds * 1e3,
                  100.0 * s.seconds / total, (long long)s.calls);
    out += line;
    if (s.bytes > 0) {
      std::snprintf(line, sizeof line, "  %6.1f GB/s", s.bytes / s.seconds / 1e9);
      out += line;
    }
    out += "\n";
  }
  return out;
}

}  // namespace ds::rt
