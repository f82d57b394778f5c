// SPDX-License-Identifier: MIT
// MoE FFN over the selected experts only. Tokens are grouped by expert (counting sort over ids, token order kept);
// each active expert runs gate/up on its gathered rows, silu*up, down. Prefill (many tokens per expert): the threaded
// matmul driver splits N inside every product. Decode (a few tokens per expert): whole experts go to threads.
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

  std::vector<float> out(size_t(TK * p.D));  // [T * k, D]: the expert output for each (token, slot)
  std::vector<int64_t> active;
  for (int64_t e = 0; e < p.E; ++e)
    if (start[e + 1] > start[e]) active.push_back(e);

  // One expert: gather its rows, gate/up, silu*up, down, scatter to its (token, slot) rows.
  auto run_expert = [&](int64_t e, int threads, std::vector<float>& xg, std::vector<float>& g, std::vector<float>& u,
                        std::vector<float>& dn) {
    const int64_t c = start[e + 1] - start[e];
    const int64_t* sel = order.data() + start[e];
    const ops::ExpertWeights& ew = p.experts[e];
    for (int64_t r = 0; r < c; ++r) std::memcpy(&xg[r * p.D], p.x + (sel[r] / p.k) * p.ldx, size_t(p.D) * 4);
    ops::MatmulParams mm;
    mm.x = xg.data(); mm.ldx = p.D; mm.M = c; mm.K = p.D; mm.N = p.inter; mm.precision = p.precision;
    mm.w = ew.gate; mm.y = g.data(); mm.ldy = p.inter;
    matmul(mm, threads);
    mm.w = ew.up; mm.y = u.data();
    matmul(mm, threads);
    silu_mul(ops::SiluMulParams{g.data(), p.inter, u.data(), p.inter, g.data(), p.inter, c, p.inter}, threads);
    ops::MatmulParams md;
    md.x = g.data(); md.ldx = p.inter; md.M = c; md.K = p.inter; md.N = p.D; md.precision = p.precision;
    md.w = ew.down; md.y = dn.data(); md.ldy = p.D;
    matmul(md, threads);
    for (int64_t r = 0; r < c; ++r) std::memcpy(&out[sel[r] * p.D], &dn[r * p.D], size_t(p.D) * 4);
  };
  auto buffers = [&](std::vector<float>& xg, std::vector<float>& g, std::vector<float>& u, std::vector<float>& dn) {
    xg.resize(size_t(max_c * p.D));
    g.resize(size_t(max_c * p.inter));
    u.resize(size_t(max_c * p.inter));
    dn.resize(size_t(max_c * p.D));
  };

  if (max_c <= kDecodeMaxM && int64_t(active.size()) >= 2 && n_threads > 1) {
    // Decode: few tokens per expert. Whole experts per thread (one fork/join for the block instead of one per
    // product); each expert's arithmetic is the same on one thread as on many, so results do not change.
#pragma omp parallel num_threads(n_threads)
    {
      std::vector<float> xg, g, u, dn;
      buffers(xg, g, u, dn);
#pragma omp for schedule(dynamic, 1)
      for (size_t i = 0; i < active.size(); ++i) run_expert(active[i], 1, xg, g, u, dn);
    }
  } else {
    std::vector<float> xg, g, u, dn;
    buffers(xg, g, u, dn);
    for (int64_t e : active) run_expert(e, n_threads, xg, g, u, dn);
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
