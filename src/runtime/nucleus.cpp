// SPDX-License-Identifier: MIT
#include "runtime/nucleus.h"

#include <algorithm>
#include <bit>
#include <cmath>

namespace ds::rt {

namespace {
// Buckets of the key (max - logit) / T, the negated log-weight: 32 per unit over [0, 64), then one for everything
// lighter than exp(-64) relative to the max (and NaN / -inf). exp(-64) * 2^31 tokens < 2^-60: the top-p boundary
// never lies there unless top_p is within 1e-18 of 1, and even then it is resolved exactly, only more slowly.
constexpr float kPerUnit = 32.0f;
constexpr float kRange = 64.0f;
constexpr int kBuckets = int(kPerUnit * kRange) + 1;

// exp(x) for x <= 0, branch-free so that loops over it vectorise: x = n ln2 + r with |r| <= ln2 / 2, exp(r) by its
// degree-6 Taylor polynomial (truncation < 1.3e-7 relative), 2^n assembled in the exponent bits. Below -87 (where
// 2^n leaves the normal range) and for NaN the result is 0.
inline float exp_nonpositive(float x) {
  const float keep = x > -87.0f ? 1.0f : 0.0f;  // 0 for NaN too
  x = x > -87.0f ? x : -87.0f;
  x = x < 0.0f ? x : 0.0f;  // callers pass x <= 0; the clamp keeps 2^n below in range whatever they pass
  // Round to nearest by the 1.5 * 2^23 trick: no rounding instruction needed, so plain SSE2 vectorises it.
  const float n = (x * 1.44269504f + 12582912.0f) - 12582912.0f;
  const float r = (x - n * 0.693145751953125f) - n * 1.428606765330187e-06f;  // ln2 split in two for exactness
  float p = 1.0f / 720.0f;
  p = p * r + 1.0f / 120.0f;
  p = p * r + 1.0f / 24.0f;
  p = p * r + 1.0f / 6.0f;
  p = p * r + 0.5f;
  p = p * r + 1.0f;
  p = p * r + 1.0f;
  const float scale = std::bit_cast<float>((int32_t(n) + 127) << 23);
  return p * scale * keep;  // a multiply, not a branch: the loop stays vectorisable
}

bool better(const MassEntry& a, const MassEntry& b) { return a.logit > b.logit || (a.logit == b.logit && a.id < b.id); }
}  // namespace

void exp_weights(const float* l, int64_t n, float mx, float inv_t, float* w) {
  for (int64_t i = 0; i < n; ++i) w[i] = exp_nonpositive((l[i] - mx) * inv_t);
}

int64_t select_mass(std::vector<MassEntry>& e, double need) {
  const int64_t n = int64_t(e.size());
  int64_t lo = 0, hi = n;  // [0, lo) chosen, [lo, hi) undecided, [hi, n) dropped
  double acc = 0;
  while (hi - lo > 32) {
    const int64_t mid = lo + (hi - lo) / 2;
    MassEntry a = e[size_t(lo)], b = e[size_t(mid)], c = e[size_t(hi - 1)];
    if (better(b, a)) std::swap(a, b);
    if (better(c, b)) std::swap(b, c);
    if (better(b, a)) std::swap(a, b);
    const MassEntry pivot = b;  // median of three
    const auto it = std::partition(e.begin() + lo, e.begin() + hi, [&](const MassEntry& x) { return better(x, pivot); });
    const int64_t m = it - e.begin();  // [lo, m) better than the pivot; the pivot is in [m, hi)
    double mass = 0;
    for (int64_t i = lo; i < m; ++i) mass += e[size_t(i)].weight;
    if (acc + mass >= need) {
      hi = m;
      continue;
    }
    const auto pv = std::find_if(e.begin() + m, e.begin() + hi, [&](const MassEntry& x) { return x.id == pivot.id; });
    std::iter_swap(e.begin() + m, pv);
    acc += mass + pivot.weight;
    if (acc >= need) return m + 1;
    lo = m + 1;
  }
  std::sort(e.begin() + lo, e.begin() + hi, better);
  for (int64_t i = lo; i < hi; ++i)
    if ((acc += e[size_t(i)].weight) >= need) return i + 1;
  return hi;
}

int64_t nucleus(const float* l, const float* w, int64_t V, float mx, float inv_t, double top_p,
                std::vector<int32_t>* cand, NucleusScratch* s) {
  // Pass 1: every token's bucket and the mass per bucket. Buckets only coarsen the logit order (a lower bucket
  // means a strictly larger logit), so whole buckets above the boundary are in the nucleus without being ordered.
  s->bucket_mass.assign(size_t(kBuckets), 0.0);
  s->bucket.resize(size_t(V));
  for (int64_t i = 0; i < V; ++i) {
    const float key = (mx - l[i]) * inv_t;
    const int b = key < kRange ? int(key * kPerUnit) : kBuckets - 1;  // NaN compares false: the last bucket
    s->bucket[size_t(i)] = uint16_t(b);
    s->bucket_mass[size_t(b)] += w[i];
  }
  double total = 0;
  for (double m : s->bucket_mass) total += m;
  const double need = top_p * total;
  // The boundary bucket: the first whose mass, added to all before it, reaches `need`.
  int edge = kBuckets - 1;
  double acc = 0;
  for (int b = 0; b < kBuckets; ++b) {
    if (acc + s->bucket_mass[size_t(b)] >= need) {
      edge = b;
      break;
    }
    acc += s->bucket_mass[size_t(b)];
  }
  // Pass 2: the buckets above the boundary whole, in id order; the boundary bucket's tokens ordered exactly.
  // Written branch-free: with a flat distribution about half the tokens are in, at random, and a branch on it
  // would mispredict half the time.
  cand->resize(size_t(V));
  int32_t* c = cand->data();
  int64_t n = 0;
  s->edge.clear();
  for (int64_t i = 0; i < V; ++i) {
    const int b = s->bucket[size_t(i)];
    c[n] = int32_t(i);
    n += b < edge;
    if (b == edge) s->edge.push_back({std::isnan(l[i]) ? -INFINITY : l[i], w[i], int32_t(i)});
  }
  cand->resize(size_t(n));
  const int64_t m = select_mass(s->edge, need - acc);
  for (int64_t i = 0; i < m; ++i) cand->push_back(s->edge[size_t(i)].id);
  return int64_t(cand->size());
}

}  // namespace ds::rt
