// SPDX-License-Identifier: MIT
// The scheduler's fast token choice: the lane-parallel argmax and top-logits selection against plain scans, top-p /
// min-p / top-k supports against a full sort, the vectorised exp against libm, the histogram nucleus against a full
// sort at vocabulary 129,280, and parallel picks equal to serial ones.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>
#include <set>
#include <vector>

#include "runtime/nucleus.h"
#include "runtime/sampler.h"
#include "runtime/token_pick.h"

namespace ds::test {
namespace {

using rt::Sampler;
using rt::SamplingParams;

std::vector<float> logits(int64_t V, uint64_t seed, float spread, int ties = 0) {
  std::mt19937_64 g(seed);
  std::normal_distribution<float> n(0.0f, spread);
  std::vector<float> l(static_cast<size_t>(V));
  for (auto& x : l) x = n(g);
  for (int t = 0; t < ties; ++t) l[size_t(g() % V)] = *std::max_element(l.begin(), l.end());
  return l;
}

int32_t scalar_argmax(const std::vector<float>& l) {
  int32_t b = 0;
  for (size_t i = 1; i < l.size(); ++i)
    if (l[i] > l[size_t(b)]) b = int32_t(i);
  return b;
}

// Ids sorted by logit (descending, lower id first on ties).
std::vector<int32_t> order(const std::vector<float>& l) {
  std::vector<int32_t> idx(l.size());
  std::iota(idx.begin(), idx.end(), 0);
  std::stable_sort(idx.begin(), idx.end(), [&](int32_t a, int32_t b) { return l[a] > l[b]; });
  return idx;
}

TEST(FastSampling, ArgmaxMatchesScanIncludingTiesAndOddLengths) {
  for (int64_t V : {1, 15, 16, 17, 1000, 129280})
    for (int ties : {0, 1, 5}) {
      auto l = logits(V, uint64_t(V * 7 + ties), 3.0f, ties);
      EXPECT_EQ(rt::argmax(l.data(), V), scalar_argmax(l)) << V << " " << ties;
    }
  std::vector<float> all_neg_inf(40, -INFINITY);
  EXPECT_EQ(rt::argmax(all_neg_inf.data(), 40), 0);
  std::vector<float> late = {1, 2, 3, 3, 3};
  EXPECT_EQ(rt::argmax(late.data(), 5), 2);
}

TEST(FastSampling, TopLogitsAndLogSumExp) {
  auto l = logits(5000, 3, 2.0f, 4);
  std::vector<std::pair<int32_t, float>> top;
  rt::top_logits(l.data(), 5000, 20, &top);
  const auto o = order(l);
  ASSERT_EQ(top.size(), 20u);
  for (size_t i = 0; i < 20; ++i) EXPECT_EQ(top[i].first, o[i]) << i;
  double s = 0;
  const double mx = *std::max_element(l.begin(), l.end());
  for (float x : l) s += std::exp(double(x) - mx);
  EXPECT_NEAR(rt::log_sum_exp(l.data(), 5000), mx + std::log(s), 1e-12);
}

// The set of tokens a sampler can return equals the exact nucleus / top-k / min-p set from a full sort.
TEST(FastSampling, TruncationSupportsMatchFullSort) {
  const int64_t V = 3000;
  for (float spread : {0.5f, 3.0f}) {
    auto l = logits(V, uint64_t(spread * 10), spread);
    const auto o = order(l);
    struct Case { int k; float top_p, min_p; };
    for (Case c : {Case{0, 0.3f, 0.0f}, Case{0, 0.0f + 1.0f, 0.2f}, Case{50, 1.0f, 0.0f}, Case{40, 0.5f, 0.0f},
                   Case{0, 0.9f, 0.05f}}) {
      SamplingParams p;
      p.temperature = 0.8f; p.top_k = c.k; p.top_p = c.top_p; p.min_p = c.min_p; p.seed = 9;
      // Expected support, computed the slow way.
      const size_t k = c.k > 0 ? size_t(c.k) : size_t(V);
      std::vector<double> pr(k);
      double Z = 0;
      for (size_t i = 0; i < k; ++i) Z += pr[i] = std::exp((double(l[o[i]]) - l[o[0]]) / p.temperature);
      size_t keep = k;
      if (p.top_p < 1) {
        double cum = 0;
        for (size_t i = 0; i < k; ++i)
          if ((cum += pr[i] / Z) >= p.top_p) { keep = i + 1; break; }
      }
      if (p.min_p > 0) {
        size_t m = 1;
        while (m < keep && pr[m] >= p.min_p * pr[0]) ++m;
        keep = m;
      }
      const std::set<int32_t> want(o.begin(), o.begin() + long(keep));
      Sampler s(p);
      std::set<int32_t> seen;
      for (int i = 0; i < 2000; ++i) {
        const int32_t t = s.sample(l.data(), V, {});
        ASSERT_TRUE(want.count(t)) << "token " << t << " outside the support (k " << c.k << ", top_p " << c.top_p
                                   << ", min_p " << c.min_p << ", spread " << spread << ")";
        seen.insert(t);
      }
      if (want.size() <= 20) EXPECT_EQ(seen.size(), want.size());
    }
  }
}

TEST(FastSampling, VectorisedExpWithinFloatPrecision) {
  std::vector<float> l;
  for (float x = -90.0f; x <= 0.0f; x += 0.00731f) l.push_back(x);
  l.push_back(0.0f);
  l.push_back(-INFINITY);
  l.push_back(NAN);
  std::vector<float> w(l.size());
  rt::exp_weights(l.data(), int64_t(l.size()), 0.0f, 1.0f, w.data());
  for (size_t i = 0; i + 2 < l.size(); ++i) {
    const double want = std::exp(double(l[i]));
    if (l[i] > -87.0f) {
      EXPECT_NEAR(w[i], want, 3e-7 * want) << "exp(" << l[i] << ")";
    } else {
      EXPECT_GE(w[i], 0.0f);
      EXPECT_LE(w[i], 1.7e-38f);
    }
  }
  EXPECT_EQ(w[l.size() - 3], 1.0f);  // the max weighs exactly 1 (min-p compares against it)
  EXPECT_EQ(w[l.size() - 2], 0.0f);
  EXPECT_EQ(w[l.size() - 1], 0.0f);
  // Temperature and max applied: exp((l - mx) / T).
  const float lt[3] = {2.0f, 1.0f, -3.0f};
  float wt[3];
  rt::exp_weights(lt, 3, 2.0f, 1.0f / 0.7f, wt);
  for (int i = 0; i < 3; ++i) EXPECT_NEAR(wt[i], std::exp((lt[i] - 2.0) / 0.7), 3e-7);
}

// The histogram nucleus against a full sort, over a real-size vocabulary: flat and peaked distributions, ties at the
// top and at the boundary, all-equal logits (one bucket holds everything), NaN and -inf entries.
TEST(FastSampling, NucleusMatchesFullSortOnLargeVocabularies) {
  const int64_t V = 129280;
  struct Case { float spread; int ties; float T, top_p; int special; };
  for (Case c : {Case{1.0f, 0, 0.6f, 0.95f, 0}, Case{0.05f, 0, 1.0f, 0.5f, 0}, Case{4.0f, 3, 0.7f, 0.9f, 0},
                 Case{8.0f, 0, 1.0f, 0.3f, 0}, Case{0.0f, 0, 1.0f, 0.37f, 0}, Case{2.0f, 0, 1.3f, 0.99f, 1},
                 Case{1.0f, 0, 0.8f, 0.8f, 2}}) {
    auto l = logits(V, uint64_t(c.spread * 100 + c.ties), c.spread, c.ties);
    if (c.special == 1) {  // -inf and NaN logits (masked tokens, a broken row): never chosen
      for (int64_t i = 0; i < V; i += 97) l[size_t(i)] = -INFINITY;
      l[5] = NAN;
    }
    if (c.special == 2)  // coarse logits: many exact ties everywhere, the boundary among them
      for (auto& x : l) x = std::round(x * 8.0f) / 8.0f;
    std::vector<float> clean(l);
    for (auto& x : clean) x = std::isnan(x) ? -INFINITY : x;
    const auto o = order(clean);
    const float mx = clean[size_t(o[0])];
    std::vector<float> w(static_cast<size_t>(V));
    rt::exp_weights(l.data(), V, mx, 1.0f / c.T, w.data());
    double Z = 0;
    for (float x : w) Z += x;
    size_t keep = 0;
    for (double cum = 0; keep < size_t(V);)
      if ((cum += w[size_t(o[keep++])]) >= double(c.top_p) * Z) break;
    std::vector<int32_t> cand;
    rt::NucleusScratch s;
    const int64_t n = rt::nucleus(l.data(), w.data(), V, mx, 1.0f / c.T, c.top_p, &cand, &s);
    ASSERT_EQ(n, int64_t(cand.size()));
    std::vector<int32_t> got(cand), want(o.begin(), o.begin() + long(keep));
    std::sort(got.begin(), got.end());
    std::sort(want.begin(), want.end());
    EXPECT_EQ(got, want) << "spread " << c.spread << " T " << c.T << " top_p " << c.top_p << ": " << got.size()
                         << " tokens, want " << want.size();
  }
}

TEST(FastSampling, ParallelPicksEqualSerialOnes) {
  const int64_t V = 129280;
  std::vector<std::vector<float>> rows;
  for (int r = 0; r < 5; ++r) rows.push_back(logits(V, uint64_t(100 + r), 2.0f, r));
  std::vector<int32_t> hist = {1, 2, 3};
  auto run = [&](int threads, int n_rows) {
    std::vector<std::unique_ptr<Sampler>> samplers;
    std::vector<rt::PickJob> jobs;
    for (int r = 0; r < n_rows; ++r) {
      SamplingParams p;
      p.temperature = r % 2 ? 0.7f : 0.0f; p.top_p = 0.9f; p.seed = uint64_t(r); p.presence_penalty = r == 3 ? 1.0f : 0.0f;
      samplers.push_back(std::make_unique<Sampler>(p));
      jobs.push_back({rows[size_t(r)].data(), samplers.back()->plain_greedy() ? nullptr : samplers.back().get(), &hist,
                      r == 2 ? 5 : -1});
    }
    std::vector<rt::Pick> out;
    rt::pick_tokens(jobs, V, threads, &out);
    return out;
  };
  for (int n : {1, 5}) {
    const auto a = run(1, n), b = run(2, n);
    for (int r = 0; r < n; ++r) {
      EXPECT_EQ(a[size_t(r)].id, b[size_t(r)].id);
      EXPECT_EQ(a[size_t(r)].logprob, b[size_t(r)].logprob);
      EXPECT_EQ(a[size_t(r)].top, b[size_t(r)].top);
      if (r % 2 == 0 && r != 2) EXPECT_EQ(a[size_t(r)].id, scalar_argmax(rows[size_t(r)]));
    }
  }
}

}  // namespace
}  // namespace ds::test
