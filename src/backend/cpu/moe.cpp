// SPDX-License-Identifier: MIT
// MoE FFN over the selected experts only. Tokens are grouped by expert (counting sort over ids, token order kept);
// each active expert runs gate/up on its gathered rows, silu*up, down (the threaded matmul driver splits N inside
// every product, which suits both decode's 6-8 single-token experts and prefill's tens of tokens per expert).
// Results go to per-(token, slot) rows, then y[t] += w[t,j] * out[t,j] for j = 0..k-1: the reference's order,
// independent of threads and of the grouping.
#include <algorithm>
#include <cstring>
#include <vector>

#include "backend/cpu/cpu_ops.h"
#include "backend/cpu/kernels.h"
#include "base/error.h"

namespace ds::cpu {

void moe(const ops::MoeParams& p, int n_threads) {
  if (p.T <= 0 || p.k <= 0) return;
  const int64_t TK = p.T * p.k;
  // Counting sort of the (token, slot) pairs by expert.
  std::vector<int64_t> start(static_cast<size_t>(p.E + 1), 0);
  std::vector<int64_t> order(static_cast<size_t>(TK));
  for (int64_t i = 0; i < TK; ++i) {
    const int32_t e = p.ids[i];
    DS_ASSERT(e >= 0 && e < p.E);
    ++start[size_t(e) + 1];
  }
  for (int64_t e = 0; e < p.E; ++e) start[e + 1] += start[e];
  {
    std::vector<int64_t> fill(start.begin(), start.end() - 1);
    for (int64_t i = 0; i < TK; ++i) order[size_t(fill[size_t(p.ids[i])]++)] = i;
  }
  int64_t max_c = 0;
  for (int64_t e = 0; e < p.E; ++e) max_c = std::max(max_c, start[e + 1] - start[e]);

  std::vector<float> xg(static_cast<size_t>(max_c * p.D));
  std::vector<float> g(static_cast<size_t>(max_c * p.inter)), u(static_cast<size_t>(max_c * p.inter));
  std::vector<float> dn(size_t(max_c * p.D));
  std::vector<float> out(size_t(TK * p.D));  // [T * k, D]: the expert output for each (token, slot)
  for (int64_t e = 0; e < p.E; ++e) {
    const int64_t c = start[e + 1] - start[e];
    if (c == 0) continue;
    const int64_t* sel = order.data() + start[e];
    const ops::ExpertWeights& ew = p.experts[e];
    for (int64_t r = 0; r < c; ++r) std::memcpy(&xg[r * p.D], p.x + (sel[r] / p.k) * p.ldx, size_t(p.D) * 4);
    ops::MatmulParams mm;
    mm.x = xg.data(); mm.ldx = p.D; mm.M = c; mm.K = p.D; mm.N = p.inter; mm.precision = p.precision;
    mm.w = ew.gate; mm.y = g.data(); mm.ldy = p.inter;
    matmul(mm, n_threads);
    mm.w = ew.up; mm.y = u.data();
    matmul(mm, n_threads);
    silu_mul(ops::SiluMulParams{g.data(), p.inter, u.data(), p.inter, g.data(), p.inter, c, p.inter}, n_threads);
    ops::MatmulParams md;
    md.x = g.data(); md.ldx = p.inter; md.M = c; md.K = p.inter; md.N = p.D; md.precision = p.precision;
    md.w = ew.down; md.y = dn.data(); md.ldy = p.D;
    matmul(md, n_threads);
    for (int64_t r = 0; r < c; ++r) std::memcpy(&out[sel[r] * p.D], &dn[r * p.D], size_t(p.D) * 4);
  }
  // Combine in the reference's order: per token, slots j = 0..k-1.
#pragma omp parallel for num_threads(p.T * p.D < (1 << 15) ? 1 : n_threads) schedule(static)
  for (int64_t t = 0; t < p.T; ++t) {
    float* y = p.y + t * p.ldy;
    for (int64_t j = 0; j < p.k; ++j) {
      const float w = p.weights[t * p.k + j];
      const float* o = &out[(t * p.k + j) * p.D];
      for (int64_t d = 0; d < p.D; ++d) y[d] += w * o[d];
    }
  }
}

}  // namespace ds::cpu
