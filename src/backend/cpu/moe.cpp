// SPDX-License-Identifier: MIT
// MoE FFN over the selected experts only. Tokens are grouped by expert (counting sort over ids, token order kept);
// each active expert runs gate/up on its gathered rows, silu*up, down. The gate/up products of all active experts go
// to the matmul driver as one batch, the downs as another: in decode (a few tokens per expert) each batch is one
// parallel pass over all the selected experts' weights, cut evenly by bytes; an expert with many tokens (prefill) is a
// threaded product of its own. Results go to per-(token, slot) rows, then y[t] += w[t,j] * out[t,j] for
// j = 0..k-1: the reference's order, independent of threads and of the grouping.
#include <algorithm>
#include <cstring>
#include <vector>

#include "backend/cpu/cpu_ops.h"
#include "backend/cpu/kernels.h"
#include "backend/cpu/thread_pool.h"
#include "base/error.h"
#include "base/huge_pages.h"

namespace ds::cpu {

namespace {
// y[t] += w[t,j] * o[t,j] for j = 0..k-1: one function for both sources of the rows, so that combining rows
// gathered from other processes gives the bits of combining this process's own.
template <class RowOf>
void combine(const ops::MoeParams& p, int n_threads, const RowOf& row_of) {
  parallel_for(p.T, p.T * p.D < (1 << 15) ? 1 : n_threads, [&](int64_t t) {
    float* y = p.y + t * p.ldy;
    for (int64_t j = 0; j < p.k; ++j) {
      const float* o = row_of(t * p.k + j);
      if (!o) continue;
      const float w = p.weights[t * p.k + j];
      for (int64_t d = 0; d < p.D; ++d) y[d] += w * o[d];
    }
  });
}
}  // namespace

void moe(const ops::MoeParams& p, int n_threads) {
  if (p.T <= 0 || p.k <= 0) return;
  if (p.slot_in) {  // combine rows gathered from every process
    combine(p, n_threads, [&](int64_t i) { return p.slot_in + int64_t(p.slot_row[i]) * p.D; });
    return;
  }
  const int64_t TK = p.T * p.k;
  // Counting sort of the (token, slot) pairs by expert.
  std::vector<int64_t> start(static_cast<size_t>(p.E + 1), 0);
  std::vector<int64_t> order(static_cast<size_t>(TK));
  // Pairs routed to an expert this process does not hold (no weights) are left out.
  auto held = [&](int32_t e) { return p.experts[e].gate.data != nullptr; };
  for (int64_t i = 0; i < TK; ++i) {
    const int32_t e = p.ids[i];
    DS_ASSERT(e >= 0 && e < p.E);
    if (held(e)) ++start[size_t(e) + 1];
  }
  for (int64_t e = 0; e < p.E; ++e) start[e + 1] += start[e];
  const int64_t n_held = start[size_t(p.E)];
  {
    std::vector<int64_t> fill(start.begin(), start.end() - 1);
    for (int64_t i = 0; i < TK; ++i)
      if (held(p.ids[i])) order[size_t(fill[size_t(p.ids[i])]++)] = i;
  }

  // Each active expert's rows gathered into one block: xg [TK, D]; gate/up outputs g, u [TK, inter]; down [TK, D].
  // Scratch that only grows (every element is written before it is read): a prefill's MoE moves ~100 MB through
  // these, and fresh zeroed vectors cost as much as a sixth of the layer. On huge pages (base/huge_pages.h).
  static thread_local GrowBuffer xg_s, g_s, u_s, dn_s;
  float* xg = xg_s.get<float>(size_t(TK * p.D));
  float* g = g_s.get<float>(size_t(TK * p.inter));
  float* u = u_s.get<float>(size_t(TK * p.inter));
  float* dn = dn_s.get<float>(size_t(TK * p.D));
  parallel_for(n_held, n_held * p.D < (1 << 16) ? 1 : n_threads,
               [&](int64_t i) { std::memcpy(&xg[i * p.D], p.x + (order[i] / p.k) * p.ldx, size_t(p.D) * 4); });
  // Gate and up of every active expert as one batch (decode: one balanced parallel pass over all their weights;
  // an expert with many tokens runs as its own threaded product), then silu * up over all rows, then the downs.
  std::vector<ops::MatmulParams> mm;
  for (int64_t e = 0; e < p.E; ++e) {
    const int64_t c = start[e + 1] - start[e], r0 = start[e];
    if (c == 0) continue;
    ops::MatmulParams q;
    q.x = xg + r0 * p.D; q.ldx = p.D; q.M = c; q.K = p.D; q.N = p.inter; q.precision = p.precision; q.ldy = p.inter;
    q.w = p.experts[e].gate; q.y = g + r0 * p.inter;
    mm.push_back(q);
    q.w = p.experts[e].up; q.y = u + r0 * p.inter;
    mm.push_back(q);
  }
  matmul_batch(mm.data(), mm.size(), n_threads);
  if (n_held > 0) silu_mul(ops::SiluMulParams{g, p.inter, u, p.inter, g, p.inter, n_held, p.inter}, n_threads);
  mm.clear();
  for (int64_t e = 0; e < p.E; ++e) {
    const int64_t c = start[e + 1] - start[e], r0 = start[e];
    if (c == 0) continue;
    ops::MatmulParams q;
    q.x = g + r0 * p.inter; q.ldx = p.inter; q.M = c; q.K = p.inter; q.N = p.D; q.precision = p.precision;
    q.w = p.experts[e].down; q.y = dn + r0 * p.D; q.ldy = p.D;
    mm.push_back(q);
  }
  matmul_batch(mm.data(), mm.size(), n_threads);
  // dn row i is the expert output of (token, slot) order[i].
  if (p.slot_out) {  // this process's rows, for the others
    parallel_for(n_held, n_held * p.D < (1 << 16) ? 1 : n_threads, [&](int64_t i) {
      std::memcpy(p.slot_out + int64_t(p.slot_row[order[i]]) * p.D, dn + i * p.D, size_t(p.D) * 4);
    });
    return;
  }
  std::vector<int64_t> row_of(static_cast<size_t>(TK), -1);
  for (int64_t i = 0; i < n_held; ++i) row_of[size_t(order[i])] = i;
  // Combine in the reference's order: per token, slots j = 0..k-1.
  combine(p, n_threads, [&](int64_t i) -> const float* {
    const int64_t row = row_of[size_t(i)];
    return row < 0 ? nullptr : dn + row * p.D;
  });
}

}  // namespace ds::cpu
