// SPDX-License-Identifier: MIT
// Token sampling: penalties, temperature, top-k, top-p, min-p, seeded; temperature 0 is greedy (argmax, lowest id
// on ties). Nothing here sorts the whole vocabulary: top-k keeps a bounded heap, top-p selects the nucleus by a
// histogram of probability mass and orders only the boundary bucket (runtime/nucleus.h; a few streaming passes even
// when a flat distribution puts most tokens in the nucleus), min-p is one filter pass. Buffers live in the Sampler
// and are reused, so a step allocates nothing once a sequence is running.
#pragma once
#include <cstdint>
#include <random>
#include <utility>
#include <vector>

#include "runtime/nucleus.h"

namespace ds::rt {

struct SamplingParams {
  float temperature = 1.0f;  // 0 = greedy
  int32_t top_k = 0;         // 0 = off
  float top_p = 1.0f;        // 1 = off
  float min_p = 0.0f;        // 0 = off
  float repetition_penalty = 1.0f;  // HF/CTRL style: positive logits / p, negative * p, for seen tokens
  float presence_penalty = 0.0f;    // OpenAI style: - presence * [count > 0]
  float frequency_penalty = 0.0f;   // OpenAI style: - frequency * count
  uint64_t seed = 0;
};

// Throws ds::Error naming the parameter when a value is out of range (negative temperature, top_p outside (0,1], ...).
void validate(const SamplingParams& p);

class Sampler {
 public:
  explicit Sampler(const SamplingParams& p);
  // `logits` [vocab]; `history` the tokens the penalties count (prompt + generated).
  int32_t sample(const float* logits, int64_t vocab, const std::vector<int32_t>& history);
  // Greedy and without penalties: the token is argmax of the raw logits.
  bool plain_greedy() const;
  bool greedy() const { return p_.temperature == 0.0f; }
  // The distribution sample() draws from, after penalties, temperature, top-k, top-p and min-p: (id, probability)
  // pairs summing to 1, in no particular order; greedy: the argmax alone. Speculative sampling weighs a draft by it.
  void distribution(const float* logits, int64_t vocab, const std::vector<int32_t>& history,
                    std::vector<std::pair<int32_t, double>>* out);
  // A uniform draw in [0, 1) from this sampler's seeded stream.
  double uniform();

 private:
  const float* penalised(const float* logits, int64_t V, const std::vector<int32_t>& history);
  void top_k_set(const float* l, int64_t V, int64_t k);  // cand_ := the k largest (any order)
  // The kept candidates cand_[0, n) of penalised logits `l` (max `mx`), their weights in prob_ by id; returns n.
  int64_t select(const float* l, int64_t V, float mx);

  SamplingParams p_;
  std::mt19937_64 rng_;
  std::vector<float> buf_;        // [V] penalised logits
  std::vector<int32_t> seen_;     // sorted history (penalty counts)
  std::vector<int32_t> cand_;     // candidate ids
  std::vector<float> prob_;       // [V] unnormalised probabilities, by token id (valid for candidates)
  NucleusScratch scratch_;
};

// Index of the largest value, the lowest index on ties (NaNs are never chosen unless everything is NaN / -inf: 0).
int32_t argmax(const float* x, int64_t n);

// The `k` most likely ids of `logits` [n] as (id, logit), most likely first (lower id on ties); k <= 64.
void top_logits(const float* logits, int64_t n, int k, std::vector<std::pair<int32_t, float>>* out);
// log Σ exp(logits) over [n] (fp64 sums; terms below exp(-50) relative to the largest are skipped: they cannot
// change the fp64 sum of at most 2^31 terms).
double log_sum_exp(const float* logits, int64_t n);

}  // namespace ds::rt
