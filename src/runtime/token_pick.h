// SPDX-License-Identifier: MIT
// The per-step token choice of the scheduler: for every row of logits that ends a sequence's step, the next token
// (argmax, or the sequence's Sampler) and, when asked, its logprob and the top alternatives. Rows are independent,
// so they run in parallel (OpenMP); a lone greedy row splits its vocabulary instead. Each row's arithmetic is fixed,
// so the picks do not depend on the thread count.
#pragma once
#include <cstdint>
#include <utility>
#include <vector>

#include "runtime/sampler.h"

namespace ds::rt {

struct PickJob {
  const float* logits = nullptr;                   // [vocab]
  Sampler* sampler = nullptr;                      // null: argmax
  const std::vector<int32_t>* history = nullptr;   // penalties (with a sampler)
  int top_logprobs = -1;                           // -1: none; else the chosen token's logprob + this many
};

struct Pick {
  int32_t id = 0;
  float logprob = 0;
  std::vector<std::pair<int32_t, float>> top;      // (id, logprob), most likely first
};

// out->size() becomes jobs.size(); out's vectors are reused between calls.
void pick_tokens(const std::vector<PickJob>& jobs, int64_t vocab, int threads, std::vector<Pick>* out);

}  // namespace ds::rt
