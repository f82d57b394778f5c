// SPDX-License-Identifier: MIT
// Feed-forward blocks: the dense SwiGLU MLP, and DeepSeekMoE (router, routed experts, shared experts).
#include <algorithm>

#include "model/model.h"
#include "model/parallel.h"
#include "model/scratch.h"

namespace ds::model {

namespace {
ops::TopkRule topk_rule(io::TopkMethod m) {
  switch (m) {
    case io::TopkMethod::Greedy: return ops::TopkRule::Greedy;
    case io::TopkMethod::GroupLimitedGreedy: return ops::TopkRule::GroupMax;
    case io::TopkMethod::NoauxTc: return ops::TopkRule::GroupTop2Sum;
  }
  return ops::TopkRule::Greedy;
}
}  // namespace

void Model::ffn(int64_t l, int64_t T) {
  const LayerWeights& w = w_.layers[l];
  const int64_t D = cfg_.hidden_size;
  float* xn = s_->xn->f32();
  float* x = s_->x->f32();

  // y (+)= down(silu(gate(xn)) * up(xn)) for a SwiGLU block of width `inter`.
  auto swiglu = [&](const WeightView& gate, const WeightView& up, const WeightView& down, int64_t inter, float* y,
                    bool acc) {
    ops::MatmulParams p;
    p.x = xn; p.ldx = D; p.M = T; p.K = D; p.N = inter; p.precision = precision_for(gate);  // see ModelOptions
    p.w = gate; p.y = s_->g->f32(); p.ldy = inter;
    ops::MatmulParams gu[2] = {p, p};
    gu[1].w = up; gu[1].y = s_->u->f32(); gu[1].precision = precision_for(up);
    be_.matmul_batch(gu, 2);
    be_.silu_mul({s_->g->f32(), inter, s_->u->f32(), inter, s_->g->f32(), inter, T, inter});
    p.x = s_->g->f32(); p.ldx = inter; p.K = inter; p.N = D; p.w = down; p.y = y; p.ldy = D; p.accumulate = acc;
    p.precision = precision_for(down);
    be_.matmul(p);
  };

  // Split across processes (model/parallel.cpp): gate/up give this rank's intermediate rows `inter`; the whole
  // intermediate activation is gathered; down gives this rank's hidden rows, written to y (row stride ldy).
  auto swiglu_part = [&](const WeightView& gate, const WeightView& up, const WeightView& down,
                         const std::vector<dist::Range>& inter, int64_t total, float* y, int64_t ldy) {
    const int64_t n = inter[size_t(par_->rank)].size(), Dr = par_->d[size_t(par_->rank)].size();
    ops::MatmulParams p;
    p.x = xn; p.ldx = D; p.M = T; p.K = D; p.N = n; p.precision = precision_for(gate);
    p.w = gate; p.y = s_->g->f32(); p.ldy = n;
    ops::MatmulParams gu[2] = {p, p};
    gu[1].w = up; gu[1].y = s_->u->f32(); gu[1].precision = precision_for(up);
    if (n > 0) {
      be_.matmul_batch(gu, 2);
      be_.silu_mul({s_->g->f32(), n, s_->u->f32(), n, s_->g->f32(), n, T, n});
    }
    float* h = par_buf(5, size_t(T * total));
    gather_cols(s_->g->f32(), T, inter, h, total);
    p.x = h; p.ldx = total; p.K = total; p.N = Dr; p.w = down; p.y = y; p.ldy = ldy; p.precision = precision_for(down);
    if (Dr > 0) be_.matmul(p);
  };

  if (arch_.layers[size_t(l)].ffn == FfnKind::Dense) {
    if (!par_ || !par_->tp) {
      swiglu(w.gate_proj, w.up_proj, w.down_proj, cfg_.intermediate_size, x, true);
      return;
    }
    const int64_t Dr = par_->d[size_t(par_->rank)].size();
    float* y = par_buf(4, size_t(T * std::max<int64_t>(Dr, 1)));
    swiglu_part(w.gate_proj, w.up_proj, w.down_proj, par_->inter, cfg_.intermediate_size, y, Dr);
    add_gathered(y, T, par_->d);
    return;
  }
  const int64_t E = cfg_.n_routed_experts, k = cfg_.num_experts_per_tok;
  // Router logits in fp32 whatever the compute precision: expert choice is sensitive to rounding.
  ops::MatmulParams g;
  g.x = xn; g.ldx = D; g.w = w.gate; g.y = s_->rlogits->f32(); g.ldy = E; g.M = T; g.N = E; g.K = D;
  g.precision = ops::Precision::F32;
  be_.matmul(g);
  ops::RouteParams rp;
  rp.logits = s_->rlogits->f32();
  rp.bias = w.e_score_correction_bias.data ? static_cast<const float*>(w.e_score_correction_bias.data) : nullptr;
  rp.ids = static_cast<int32_t*>(s_->ids->data());
  rp.weights = s_->rw->f32();
  rp.T = T; rp.E = E; rp.k = k; rp.n_group = cfg_.n_group; rp.topk_group = cfg_.topk_group;
  rp.scoring = cfg_.scoring_func == io::ScoringFunc::Sigmoid ? ops::Scoring::Sigmoid : ops::Scoring::Softmax;
  rp.rule = topk_rule(cfg_.topk_method);
  rp.norm_topk_prob = cfg_.norm_topk_prob;
  // V3 (noaux_tc) renormalises and then scales; the V2 remote code does one or the other.
  rp.scale_after_norm = cfg_.topk_method == io::TopkMethod::NoauxTc;
  rp.routed_scaling_factor = float(cfg_.routed_scaling_factor);
  be_.route(rp);

  float* out = s_->moe_out->f32();  // [T, D]: shared experts first, routed experts accumulated on top
  if (par_ && par_->tp) {
    // The shared experts' whole output on every rank (this rank's hidden columns, gathered), then every routed
    // expert's output rows gathered from the rank holding it and added in the one-process order (bitwise).
    if (cfg_.n_shared_experts > 0) {
      const int64_t Dr = par_->d[size_t(par_->rank)].size();
      float* y = par_buf(4, size_t(T * std::max<int64_t>(Dr, 1)));
      swiglu_part(w.shared.gate, w.shared.up, w.shared.down, par_->shared,
                  cfg_.n_shared_experts * cfg_.moe_intermediate_size, y, Dr);
      gather_cols(y, T, par_->d, out, D);
    } else {
      be_.copy({s_->zeros->f32(), D, out, D, T, D});
    }
  } else if (cfg_.n_shared_experts > 0) {
    swiglu(w.shared.gate, w.shared.up, w.shared.down, cfg_.n_shared_experts * cfg_.moe_intermediate_size, out, false);
  } else {
    be_.copy({s_->zeros->f32(), D, out, D, T, D});
  }
  ops::MoeParams mp;
  mp.x = xn; mp.ldx = D; mp.ids = rp.ids; mp.weights = rp.weights; mp.experts = w.experts.data();
  mp.y = out; mp.ldy = D; mp.T = T; mp.D = D; mp.k = k; mp.E = E; mp.inter = cfg_.moe_intermediate_size;
  mp.precision = opt_.precision;
  if (par_ && par_->ep && par_->ep_sum) {  // each rank's partial sum (shared output on rank 0 only), summed
    if (par_->rank != 0) be_.copy({s_->zeros->f32(), D, out, D, T, D});
    be_.moe(mp);
    be_.sync();
    par_->comm->all_reduce_sum(out, size_t(T * D));
  } else if (par_ && par_->ep) {
    moe_parallel(mp);  // model/parallel.cpp
  } else {
    be_.moe(mp);
  }
  be_.add({x, D, out, D, x, D, T, D});
}

}  // namespace ds::model
