// SPDX-License-Identifier: MIT
#include "runtime/token_pick.h"

#include <algorithm>

namespace ds::rt {

namespace {
void pick_one(const PickJob& j, int64_t V, Pick* p) {
  p->id = j.sampler ? j.sampler->sample(j.logits, V, *j.history) : argmax(j.logits, V);
  p->top.clear();
  if (j.top_logprobs < 0) return;
  // Logprobs of the raw distribution (before penalties and temperature), as the OpenAI API reports them.
  const double lse = log_sum_exp(j.logits, V);
  p->logprob = float(double(j.logits[p->id]) - lse);
  if (j.top_logprobs > 0) {
    top_logits(j.logits, V, j.top_logprobs, &p->top);
    for (auto& [id, v] : p->top) v = float(double(v) - lse);
  }
}

// argmax over a row split into `nt` ranges (multiples of 64 values), combined in range order: the first maximum.
int32_t split_argmax(const float* x, int64_t V, int nt) {
  nt = std::min(nt, 64);
  const int64_t per = ((V + nt - 1) / nt + 63) / 64 * 64;
  int32_t local[64];
  std::fill_n(local, nt, -1);
#pragma omp parallel for num_threads(nt) schedule(static, 1)
  for (int t = 0; t < nt; ++t) {
    const int64_t a = std::min<int64_t>(V, t * per), b = std::min<int64_t>(V, a + per);
    if (b > a) local[t] = int32_t(a + argmax(x + a, b - a));
  }
  int32_t best = 0;
  for (int t = 0; t < nt; ++t)
    if (local[t] >= 0 && x[local[t]] > x[best]) best = local[t];
  return best;
}
}  // namespace

void pick_tokens(const std::vector<PickJob>& jobs, int64_t V, int threads, std::vector<Pick>* out) {
  out->resize(jobs.size());
  const int n = int(jobs.size());
  if (n == 0) return;
  const int nt = std::max(1, threads);
  // One greedy row on several threads: the vocabulary scan is the whole cost, split it.
  if (n == 1 && nt > 1 && !jobs[0].sampler && jobs[0].top_logprobs < 0) {
    (*out)[0].id = split_argmax(jobs[0].logits, V, nt);
    (*out)[0].top.clear();
    return;
  }
  const int used = std::min(nt, n);
#pragma omp parallel for num_threads(used) schedule(dynamic, 1) if (used > 1)
  for (int i = 0; i < n; ++i) pick_one(jobs[size_t(i)], V, &(*out)[size_t(i)]);
}

}  // namespace ds::rt
