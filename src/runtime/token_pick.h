// SPDX-License-Identifier: MIT
// The per-step token choice of the scheduler: for every row of logits that ends a sequence's step, the next token
// (argmax, or the sequence's Sampler; after its constraint's mask) and, when asked, its logprob and the top
// alternatives. Rows are independent, so a step with enough of them runs them in parallel (OpenMP). Each row's
// arithmetic is fixed, so the picks do not depend on the thread count.
#pragma once
#include <cstdint>
#include <utility>
#include <vector>

#include "runtime/constraint.h"
#include "runtime/sampler.h"

namespace ds::rt {

struct PickJob {
  float* logits = nullptr;                         // [vocab]
  Sampler* sampler = nullptr;                      // null: argmax
  const std::vector<int32_t>* history = nullptr;   // penalties (with a sampler)
  int top_logprobs = -1;                           // -1: none; else the chosen token's logprob + this many
  LogitConstraint* constraint = nullptr;           // first masks `logits` in place: the choice and the
                                                   // logprobs see only the allowed tokens
};

struct Pick {
  int32_t id = 0;
  float logprob = 0;
  std::vector<std::pair<int32_t, float>> top;      // (id, logprob), most likely first
};

// The logprob of p->id and the `top` most likely alternatives, from the raw `logits` [vocab] (before penalties and
// temperature, as the OpenAI API reports them); top < 0: nothing.
void fill_logprobs(const float* logits, int64_t vocab, int top, Pick* p);

// out->size() becomes jobs.size(); out's vectors are reused between calls.
void pick_tokens(const std::vector<PickJob>& jobs, int64_t vocab, int threads, std::vector<Pick>* out);

}  // namespace ds::rt
