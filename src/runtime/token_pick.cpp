// SPDX-License-Identifier: MIT
#include "runtime/token_pick.h"

#include <algorithm>
#include <cmath>

namespace ds::rt {

void fill_logprobs(const float* logits, int64_t V, int top, Pick* p) {
  p->top.clear();
  if (top < 0) return;
  const double lse = log_sum_exp(logits, V);
  p->logprob = float(double(logits[p->id]) - lse);
  if (top > 0) {
    top_logits(logits, V, top, &p->top);
    for (auto& [id, v] : p->top) v = float(double(v) - lse);
    // A constrained row's forbidden tokens (-inf) are no alternatives.
    while (!p->top.empty() && !std::isfinite(p->top.back().second)) p->top.pop_back();
  }
}

namespace {
void pick_one(const PickJob& j, int64_t V, Pick* p) {
  if (j.constraint) j.constraint->mask(j.logits, V);
  p->id = j.sampler ? j.sampler->sample(j.logits, V, *j.history) : argmax(j.logits, V);
  fill_logprobs(j.logits, V, j.top_logprobs, p);
}

}  // namespace

void pick_tokens(const std::vector<PickJob>& jobs, int64_t V, int threads, std::vector<Pick>* out) {
  out->resize(jobs.size());
  const int n = int(jobs.size());
  if (n == 0) return;
  // Threads only pay when the work outweighs waking them (tens of microseconds, milliseconds when other processes
  // hold the cores): about 8 rows' worth of vocabulary scans. Sampling and logprobs rows weigh more than argmax.
  int64_t work = 0;
  for (const PickJob& j : jobs) work += (j.sampler ? 4 : 1) + (j.top_logprobs >= 0 ? 8 : 0) + (j.constraint ? 8 : 0);
  const int used = work >= 8 ? std::min(std::max(1, threads), n) : 1;
#pragma omp parallel for num_threads(used) schedule(dynamic, 1) if (used > 1)
  for (int i = 0; i < n; ++i) pick_one(jobs[size_t(i)], V, &(*out)[size_t(i)]);
}

}  // namespace ds::rt
