// SPDX-License-Identifier: MIT
#include "runtime/sampler.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "base/error.h"
#include "runtime/nucleus.h"

namespace ds::rt {

namespace {
constexpr int kLanes = 16;      // independent lanes: the compiler keeps them in one vector register
constexpr double kCut = -60.0;  // exp(-60) * 2^31 < 2^-53: terms further below the max vanish in an fp64 sum

// Largest finite-or-inf value of x[0, n) (-inf when empty or all NaN).
float max_value(const float* x, int64_t n) {
  float acc[kLanes];
  std::fill_n(acc, kLanes, -INFINITY);
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes)
    for (int j = 0; j < kLanes; ++j) acc[j] = x[i + j] > acc[j] ? x[i + j] : acc[j];
  for (; i < n; ++i) acc[0] = x[i] > acc[0] ? x[i] : acc[0];
  float m = acc[0];
  for (int j = 1; j < kLanes; ++j) m = acc[j] > m ? acc[j] : m;
  return m;
}

bool before(float va, int32_t a, float vb, int32_t b) { return va > vb || (va == vb && a < b); }
}  // namespace

int32_t argmax(const float* x, int64_t n) {
  // Per-lane running maximum and the first index where it occurs (strict >), then the lanes combined with the lowest
  // index among equal maxima: the first occurrence overall, as a scalar scan would find.
  float v[kLanes];
  int32_t id[kLanes];
  std::fill_n(v, kLanes, -INFINITY);
  std::fill_n(id, kLanes, 0);
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes)
    for (int j = 0; j < kLanes; ++j) {
      const bool gt = x[i + j] > v[j];
      v[j] = gt ? x[i + j] : v[j];
      id[j] = gt ? int32_t(i + j) : id[j];
    }
  float bv = -INFINITY;
  int32_t bi = 0;
  for (int j = 0; j < kLanes; ++j)
    if (v[j] > bv || (v[j] == bv && v[j] > -INFINITY && id[j] < bi)) bv = v[j], bi = id[j];
  for (; i < n; ++i)
    if (x[i] > bv) bv = x[i], bi = int32_t(i);
  return bi;
}

void top_logits(const float* l, int64_t n, int k, std::vector<std::pair<int32_t, float>>* out) {
  out->clear();
  k = int(std::min<int64_t>(k, n));
  if (k <= 0) return;
  // Sorted insertion into a list of at most k (k <= 64): ids arrive in increasing order, so a new value only
  // displaces strictly smaller ones and ties keep the lower id first.
  for (int64_t i = 0; i < n; ++i) {
    const float x = l[i];
    if (int(out->size()) == k && !(x > out->back().second)) continue;
    auto pos = out->end();
    while (pos != out->begin() && x > std::prev(pos)->second) --pos;
    out->insert(pos, {int32_t(i), x});
    if (int(out->size()) > k) out->pop_back();
  }
}

double log_sum_exp(const float* l, int64_t n) {
  const double mx = max_value(l, n);
  if (!std::isfinite(mx)) return mx;
  double sum = 0;
  for (int64_t i = 0; i < n; ++i) {
    const double z = double(l[i]) - mx;
    if (z > kCut) sum += std::exp(z);
  }
  return mx + std::log(sum);
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

bool Sampler::plain_greedy() const {
  return p_.temperature == 0.0f && p_.repetition_penalty == 1.0f && p_.presence_penalty == 0.0f &&
         p_.frequency_penalty == 0.0f;
}

const float* Sampler::penalised(const float* logits, int64_t V, const std::vector<int32_t>& history) {
  if (p_.repetition_penalty == 1.0f && p_.presence_penalty == 0.0f && p_.frequency_penalty == 0.0f) return logits;
  buf_.assign(logits, logits + V);
  seen_.assign(history.begin(), history.end());
  std::sort(seen_.begin(), seen_.end());
  for (size_t i = 0; i < seen_.size();) {
    size_t j = i;
    while (j < seen_.size() && seen_[j] == seen_[i]) ++j;
    const int32_t t = seen_[i];
    const float c = float(j - i);
    i = j;
    if (t < 0 || t >= V) continue;
    float& x = buf_[size_t(t)];
    if (p_.repetition_penalty != 1.0f) x = x > 0 ? x / p_.repetition_penalty : x * p_.repetition_penalty;
    x -= p_.presence_penalty + p_.frequency_penalty * c;
  }
  return buf_.data();
}

void Sampler::top_k_set(const float* l, int64_t V, int64_t k) {
  cand_.clear();
  // Min-heap of the k best (value, lower id first) seen so far: one pass, O(V log k) worst case.
  auto worse = [&](int32_t a, int32_t b) { return before(l[a], a, l[b], b); };  // heap top = the worst kept
  for (int64_t i = 0; i < V; ++i) {
    if (int64_t(cand_.size()) < k) {
      cand_.push_back(int32_t(i));
      std::push_heap(cand_.begin(), cand_.end(), worse);
    } else if (before(l[i], int32_t(i), l[cand_.front()], cand_.front())) {
      std::pop_heap(cand_.begin(), cand_.end(), worse);
      cand_.back() = int32_t(i);
      std::push_heap(cand_.begin(), cand_.end(), worse);
    }
  }
}

int64_t Sampler::select(const float* l, int64_t V, float mx) {
  const float inv_t = 1.0f / p_.temperature;
  const int64_t k = p_.top_k > 0 ? std::min<int64_t>(p_.top_k, V) : V;
  // Candidates: the top-k set, or every token; weights exp((l - max) / T) indexed by token id (the max weighs 1).
  prob_.resize(size_t(V));
  int64_t n = 0;
  if (k < V) {
    top_k_set(l, V, k);
    auto& e = scratch_.edge;
    e.clear();
    double Z = 0;
    for (int32_t i : cand_) {
      const float w = std::exp((l[i] - mx) * inv_t);
      prob_[size_t(i)] = w;
      e.push_back({l[i], w, i});
      Z += w;
    }
    n = p_.top_p < 1.0f ? select_mass(e, double(p_.top_p) * Z) : int64_t(e.size());
    for (size_t i = 0; i < e.size(); ++i) cand_[i] = e[i].id;
  } else {
    exp_weights(l, V, mx, inv_t, prob_.data());
    if (p_.top_p < 1.0f) {  // the fewest most likely tokens holding top_p of the mass
      n = nucleus(l, prob_.data(), V, mx, inv_t, double(p_.top_p), &cand_, &scratch_);
    } else {
      cand_.resize(size_t(V));
      std::iota(cand_.begin(), cand_.end(), 0);
      n = V;
    }
  }
  if (p_.min_p > 0.0f) {  // and of those, the ones at least min_p as likely as the most likely (weight 1)
    const float thr = p_.min_p;
    n = std::partition(cand_.begin(), cand_.begin() + n, [&](int32_t i) { return prob_[size_t(i)] >= thr; }) -
        cand_.begin();
  }
  return n;
}

int32_t Sampler::sample(const float* logits, int64_t V, const std::vector<int32_t>& history) {
  const float* l = penalised(logits, V, history);
  if (p_.temperature == 0.0f) return argmax(l, V);
  const float mx = max_value(l, V);
  if (!std::isfinite(mx)) return argmax(l, V);  // nothing finite to weigh
  const int64_t n = select(l, V, mx);
  // Walk the kept candidates in the order selection left them: a fixed function of the logits, so a seed still
  // gives the same draw (sorting up to the whole vocabulary by id would cost more than everything else here).
  double mass = 0;
  for (int64_t i = 0; i < n; ++i) mass += prob_[size_t(cand_[size_t(i)])];
  std::uniform_real_distribution<double> u(0.0, mass);
  double r = u(rng_);
  for (int64_t i = 0; i < n; ++i) {
    const double pi = prob_[size_t(cand_[size_t(i)])];
    r -= pi;
    if (r <= 0 && pi > 0) return cand_[size_t(i)];
  }
  for (int64_t i = n; i-- > 0;)  // rounding left a sliver of r: the last candidate with weight
    if (prob_[size_t(cand_[size_t(i)])] > 0) return cand_[size_t(i)];
  return argmax(l, V);
}

void Sampler::distribution(const float* logits, int64_t V, const std::vector<int32_t>& history,
                           std::vector<std::pair<int32_t, double>>* out) {
  out->clear();
  const float* l = penalised(logits, V, history);
  const float mx = p_.temperature == 0.0f ? 0.0f : max_value(l, V);
  if (p_.temperature == 0.0f || !std::isfinite(mx)) {
    out->push_back({argmax(l, V), 1.0});
    return;
  }
  const int64_t n = select(l, V, mx);
  double mass = 0;
  for (int64_t i = 0; i < n; ++i) mass += prob_[size_t(cand_[size_t(i)])];
  for (int64_t i = 0; i < n; ++i) {
    const int32_t id = cand_[size_t(i)];
    if (prob_[size_t(id)] > 0) out->push_back({id, prob_[size_t(id)] / mass});
  }
  if (out->empty()) out->push_back({argmax(l, V), 1.0});
}

double Sampler::uniform() { return std::uniform_real_distribution<double>(0.0, 1.0)(rng_); }

}  // namespace ds::rt
