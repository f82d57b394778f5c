// SPDX-License-Identifier: MIT
// Reference expert routing and MoE FFN (deepseek_spec.md §1.7, §1.8).
#include <algorithm>
#include <cmath>
#include <numeric>
#include <vector>

#include "base/error.h"
#include "ops/ref/ref_backend.h"

namespace ds::ref {

namespace {
// Indices of the k largest values; ties go to the lower index. Result is sorted by value, descending.
std::vector<int64_t> topk_indices(const std::vector<float>& v, int64_t k) {
  std::vector<int64_t> idx(v.size());
  std::iota(idx.begin(), idx.end(), 0);
  std::stable_sort(idx.begin(), idx.end(), [&](int64_t a, int64_t b) { return v[a] > v[b]; });
  idx.resize(size_t(k));
  return idx;
}
}  // namespace

void route(const ops::RouteParams& p) {
  DS_ASSERT(p.k <= p.E && p.n_group >= 1 && p.E % p.n_group == 0 && p.topk_group <= p.n_group);
  const int64_t gsize = p.E / p.n_group;
  std::vector<float> s(size_t(p.E)), b(size_t(p.E));
  for (int64_t t = 0; t < p.T; ++t) {
    const float* lg = p.logits + t * p.E;
    if (p.scoring == ops::Scoring::Softmax) {
      float mx = -INFINITY;
      for (int64_t e = 0; e < p.E; ++e) mx = std::max(mx, lg[e]);
      double sum = 0.0;
      for (int64_t e = 0; e < p.E; ++e) sum += std::exp(double(lg[e]) - mx);
      for (int64_t e = 0; e < p.E; ++e) s[e] = float(std::exp(double(lg[e]) - mx) / sum);
    } else {
      for (int64_t e = 0; e < p.E; ++e) s[e] = float(1.0 / (1.0 + std::exp(-double(lg[e]))));
    }
    for (int64_t e = 0; e < p.E; ++e) b[e] = s[e] + (p.bias ? p.bias[e] : 0.0f);

    if (p.rule != ops::TopkRule::Greedy && p.n_group > 1) {
      std::vector<float> gscore(size_t(p.n_group));
      for (int64_t g = 0; g < p.n_group; ++g) {
        std::vector<float> grp(b.begin() + g * gsize, b.begin() + (g + 1) * gsize);
        if (p.rule == ops::TopkRule::GroupMax) {
          gscore[g] = *std::max_element(grp.begin(), grp.end());
        } else {
          const auto top = topk_indices(grp, std::min<int64_t>(2, gsize));
          float sum = 0.0f;
          for (int64_t i : top) sum += grp[i];
          gscore[g] = sum;
        }
      }
      const auto keep = topk_indices(gscore, p.topk_group);
      std::vector<bool> kept(size_t(p.n_group), false);
      for (int64_t g : keep) kept[g] = true;
      for (int64_t e = 0; e < p.E; ++e)
        if (!kept[e / gsize]) b[e] = -INFINITY;
    }
    const auto ids = topk_indices(b, p.k);
    double wsum = 0.0;
    for (int64_t j = 0; j < p.k; ++j) wsum += s[ids[j]];
    for (int64_t j = 0; j < p.k; ++j) {
      float w = s[ids[j]];
      if (p.norm_topk_prob) w = float(w / (wsum + 1e-20));
      if (!p.norm_topk_prob || p.scale_after_norm) w *= p.routed_scaling_factor;
      p.ids[t * p.k + j] = int32_t(ids[j]);
      p.weights[t * p.k + j] = w;
    }
  }
}

void moe(const ops::MoeParams& p) {
  std::vector<float> g(size_t(p.inter)), u(size_t(p.inter)), out(size_t(p.D));
  for (int64_t t = 0; t < p.T; ++t) {
    for (int64_t j = 0; j < p.k; ++j) {
      if (p.slot_in) {  // rows gathered from every process (ops/params.h)
        const float* o = p.slot_in + int64_t(p.slot_row[t * p.k + j]) * p.D;
        const float w = p.weights[t * p.k + j];
        for (int64_t d = 0; d < p.D; ++d) p.y[t * p.ldy + d] += w * o[d];
        continue;
      }
      const int32_t e = p.ids[t * p.k + j];
      DS_ASSERT(e >= 0 && e < p.E);
      const ops::ExpertWeights& ew = p.experts[e];
      if (!ew.gate.data) continue;  // held by another process
      ops::MatmulParams mm;
      mm.x = p.x + t * p.ldx; mm.ldx = p.D; mm.M = 1; mm.K = p.D; mm.N = p.inter; mm.precision = p.precision;
      mm.w = ew.gate; mm.y = g.data(); mm.ldy = p.inter;
      matmul(mm);
      mm.w = ew.up; mm.y = u.data();
      matmul(mm);
      ops::SiluMulParams sm{g.data(), p.inter, u.data(), p.inter, g.data(), p.inter, 1, p.inter};
      silu_mul(sm);
      ops::MatmulParams md;
      md.x = g.data(); md.ldx = p.inter; md.M = 1; md.K = p.inter; md.N = p.D; md.precision = p.precision;
      md.w = ew.down; md.y = out.data(); md.ldy = p.D;
      matmul(md);
      if (p.slot_out) {
        std::copy(out.begin(), out.end(), p.slot_out + int64_t(p.slot_row[t * p.k + j]) * p.D);
        continue;
      }
      const float w = p.weights[t * p.k + j];
      for (int64_t d = 0; d < p.D; ++d) p.y[t * p.ldy + d] += w * out[d];
    }
  }
}

}  // namespace ds::ref
