// SPDX-License-Identifier: MIT
// Speculative sampling draws from the same distribution as plain sampling (tiny-v3 fixture, which has an MTP layer):
// a two-sample chi-square test over the second and third generated tokens of 20,000 draws each, at T = 1 and at
// T = 0.6 / top-p 0.95, with drafts from the MTP layer (mostly rejected on this random-weight model, so the residual
// path is exercised), three chained drafts, and drafts forced wrong. Labelled slow (about 45 s).
#include <gtest/gtest.h>

#include <cmath>
#include <map>

#include "runtime/engine.h"
#include "runtime/session.h"
#include "runtime/speculative.h"

namespace ds::test {
namespace {

const std::string kTinyV3 = std::string(DS_SOURCE_DIR) + "/tests/fixtures/models/tiny-v3";

std::vector<int32_t> prompt(int n, int64_t V) {
  std::vector<int32_t> p;
  for (int i = 0; i < n; ++i) p.push_back(int32_t((i * 131 + 7) % V));
  return p;
}

// Counts of (position, token) over `draws` generations of 3 tokens after the prompt.
std::map<std::pair<int, int32_t>, int> draw(rt::Engine& e, const rt::SamplingParams& sp, int n_draft, bool wrong,
                                            int draws) {
  std::map<std::pair<int, int32_t>, int> counts;
  const int64_t V = e.config().vocab_size;
  const std::vector<int32_t> p = prompt(5, V);
  for (int i = 0; i < draws; ++i) {
    rt::SamplingParams q = sp;
    q.seed = uint64_t(i) * 7919 + uint64_t(n_draft) * 104729 + (wrong ? 1 : 0);
    rt::Sampler sampler(q);
    rt::Session s(e, 16);
    rt::SpecStream st(s, sampler, n_draft);
    // Forced wrong: every draft moved to the next id, and its distribution with it (the draft must be a draw from
    // what it claims).
    if (wrong)
      st.set_draft_hook([&](std::vector<int32_t>& d, std::vector<std::vector<std::pair<int32_t, double>>>& q) {
        for (int32_t& t : d) t = (t + 1) % int32_t(V);
        for (auto& dist : q)
          for (auto& [id, pr] : dist) id = (id + 1) % int32_t(V);
      });
    st.prefill(p);
    std::vector<int32_t> got;
    while (got.size() < 3) st.next(&got, 3 - int64_t(got.size()));
    for (int k = 1; k < 3; ++k) ++counts[{k, got[size_t(k)]}];
  }
  return counts;
}

// Two-sample chi-square statistic over bins with at least 10 draws in the two samples together (the rest pooled),
// as a z-score: (chi2 - df) / sqrt(2 df).
double chi_square_z(const std::map<std::pair<int, int32_t>, int>& a, const std::map<std::pair<int, int32_t>, int>& b) {
  std::map<std::pair<int, int32_t>, std::pair<double, double>> bins;
  for (const auto& [k, v] : a) bins[k].first += v;
  for (const auto& [k, v] : b) bins[k].second += v;
  double chi = 0, ra = 0, rb = 0;
  int df = -1;
  for (const auto& [k, v] : bins) {
    if (v.first + v.second < 10) {
      ra += v.first, rb += v.second;
      continue;
    }
    chi += (v.first - v.second) * (v.first - v.second) / (v.first + v.second);
    ++df;
  }
  if (ra + rb > 0) chi += (ra - rb) * (ra - rb) / (ra + rb), ++df;
  return (chi - df) / std::sqrt(2.0 * df);
}

TEST(Speculative, SamplingDistributionEqualsPlainSampling) {
  rt::EngineOptions o;
  o.threads = 1;
  o.precision = ops::Precision::F32;
  auto e = rt::Engine::load(kTinyV3, o);
  const int kDraws = 20000;
  rt::SamplingParams t1;
  t1.temperature = 1.0f;
  rt::SamplingParams nucleus;
  nucleus.temperature = 0.6f;
  nucleus.top_p = 0.95f;
  for (const auto& sp : {t1, nucleus}) {
    const auto plain = draw(*e, sp, 0, false, kDraws);
    for (int n_draft : {1, 3})
      for (bool wrong : {false, true}) {
        if (wrong && n_draft == 3) continue;
        const double z = chi_square_z(plain, draw(*e, sp, n_draft, wrong, kDraws));
        std::printf("T=%.1f top_p=%.2f, %d drafts%s: chi-square z = %.2f\n", sp.temperature, sp.top_p, n_draft,
                    wrong ? " (forced wrong)" : "", z);
        // z ~ N(0, 1) when the distributions agree; 5 sigma: a false alarm once in millions of runs.
        EXPECT_LT(z, 5.0) << "T=" << sp.temperature << " top_p=" << sp.top_p << ", " << n_draft << " drafts"
                          << (wrong ? ", forced wrong" : "");
      }
  }
}

}  // namespace
}  // namespace ds::test
