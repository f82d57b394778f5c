// SPDX-License-Identifier: MIT
#include "runtime/sampler.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <unordered_map>

#include "base/error.h"

namespace ds::rt {

int32_t argmax(const float* x, int64_t n) {
  int64_t best = 0;
  for (int64_t i = 1; i < n; ++i)
    if (x[i] > x[best]) best = i;
  return int32_t(best);
}

void validate(const SamplingParams& p) {
  DS_CHECK(std::isfinite(p.temperature) && p.temperature >= 0 && p.temperature <= 100, "temperature = ",
           p.temperature, " must be in [0, 100]");
  DS_CHECK(p.top_k >= 0, "top_k = ", p.top_k, " must be >= 0");
  DS_CHECK(std::isfinite(p.top_p) && p.top_p > 0 && p.top_p <= 1, "top_p = ", p.top_p, " must be in (0, 1]");
  DS_CHECK(std::isfinite(p.min_p) && p.min_p >= 0 && p.min_p <= 1, "min_p = ", p.min_p, " must be in [0, 1]");
  DS_CHECK(std::isfinite(p.repetition_penalty) && p.repetition_penalty > 0 && p.repetition_penalty <= 10,
           "repetition_penalty = ", p.repetition_penalty, " must be in (0, 10]");
  DS_CHECK(std::isfinite(p.presence_penalty) && std::fabs(p.presence_penalty) <= 2, "presence_penalty = ",
           p.presence_penalty, " must be in [-2, 2]");
  DS_CHECK(std::isfinite(p.frequency_penalty) && std::fabs(p.frequency_penalty) <= 2, "frequency_penalty = ",
           p.frequency_penalty, " must be in [-2, 2]");
}

Sampler::Sampler(const SamplingParams& p) : p_(p), rng_(p.seed) { validate(p); }

int32_t Sampler::sample(const float* logits, int64_t V, const std::vector<int32_t>& history) {
  std::vector<float> l(logits, logits + V);
  if (p_.repetition_penalty != 1.0f || p_.presence_penalty != 0.0f || p_.frequency_penalty != 0.0f) {
    std::unordered_map<int32_t, int> count;
    for (int32_t t : history)
      if (t >= 0 && t < V) ++count[t];
    for (const auto& [t, c] : count) {
      float& x = l[t];
      if (p_.repetition_penalty != 1.0f) x = x > 0 ? x / p_.repetition_penalty : x * p_.repetition_penalty;
      x -= p_.presence_penalty + p_.frequency_penalty * float(c);
    }
  }
  if (p_.temperature == 0.0f) return argmax(l.data(), V);

  // Candidates sorted by logit (descending, lower id first on ties), cut by top-k.
  std::vector<int32_t> idx(static_cast<size_t>(V));
  std::iota(idx.begin(), idx.end(), 0);
  const int64_t k = p_.top_k > 0 ? std::min<int64_t>(p_.top_k, V) : V;
  auto cmp = [&](int32_t a, int32_t b) { return l[a] > l[b] || (l[a] == l[b] && a < b); };
  std::partial_sort(idx.begin(), idx.begin() + k, idx.end(), cmp);
  idx.resize(size_t(k));
  // Softmax at the temperature, in double for the sums.
  std::vector<double> prob(idx.size());
  const double mx = l[idx[0]];
  double sum = 0;
  for (size_t i = 0; i < idx.size(); ++i) sum += prob[i] = std::exp((double(l[idx[i]]) - mx) / p_.temperature);
  for (double& x : prob) x /= sum;
  size_t keep = prob.size();
  if (p_.top_p < 1.0f) {  // smallest prefix whose mass reaches top_p
    double c = 0;
    for (size_t i = 0; i < prob.size(); ++i) {
      c += prob[i];
      if (c >= p_.top_p) { keep = i + 1; break; }
    }
  }
  if (p_.min_p > 0.0f) {  // drop tokens below min_p * p(max)
    const double thr = p_.min_p * prob[0];
    size_t m = 1;
    while (m < keep && prob[m] >= thr) ++m;
    keep = m;
  }
  double mass = 0;
  for (size_t i = 0; i < keep; ++i) mass += prob[i];
  std::uniform_real_distribution<double> u(0.0, mass);
  double r = u(rng_);
  for (size_t i = 0; i < keep; ++i) {
    r -= prob[i];
    if (r <= 0) return idx[i];
  }
  return idx[keep - 1];
}

}  // namespace ds::rt
