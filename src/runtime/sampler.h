// SPDX-License-Identifier: MIT
// Token sampling: penalties, temperature, top-k, top-p, min-p, seeded; temperature 0 is greedy (argmax, lowest id
// on ties).
#pragma once
#include <cstdint>
#include <random>
#include <vector>

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

 private:
  SamplingParams p_;
  std::mt19937_64 rng_;
};

int32_t argmax(const float* x, int64_t n);

}  // namespace ds::rt
