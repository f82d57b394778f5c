// SPDX-License-Identifier: MIT
// Tensor and expert parallelism across the ranks of a dist::Comm (docs/SCALING.md). Each rank holds a slice of the
// weights, cut here before the backend prepares them (so a rank never copies, or touches through the mapping, what
// it does not compute):
//  - MLA attention heads: q_proj / q_b_proj, kv_b_proj (and a GGUF's k_b_proj / v_b_proj) rows of this rank's heads.
//    The latent projections (q_a, kv_a) are replicated, so every rank writes the whole latent cache.
//  - Row-parallel products: o_proj, the dense and shared MLPs' gate/up and down, and lm_head compute this rank's
//    output rows (hidden columns in units of 16); the full activation is gathered from every rank. Each output value
//    is one whole dot product as in one process, so attention, dense MLPs and logits are bitwise the one-process
//    values; only the MoE sum below is re-associated.
//  - Routed experts: this rank's contiguous range; the others' views are left empty (never loaded), and the MoE op
//    skips them. A MoE layer's output (shared expert slice + this rank's experts) is summed over ranks in rank order.
// Grouped-query attention (the dense distills) is replicated on every rank for now; its o_proj is split.
// Collectives per decoder layer: MLA 2 gathers; dense MLP 2 gathers; MoE 1 gather + 1 sum; lm_head 1 gather.
#include <algorithm>

#include "base/error.h"
#include "model/model.h"
#include "model/parallel.h"
#include "model/scratch.h"

namespace ds::model {

int Model::rank() const { return par_ ? par_->rank : 0; }
int Model::ranks() const { return par_ ? par_->size : 1; }

float* Model::par_buf(int i, size_t n) {
  Par& p = *par_;
  if (p.bufs.size() <= size_t(i)) {
    p.bufs.resize(size_t(i) + 1);
    p.floats.resize(size_t(i) + 1, 0);
  }
  if (p.floats[size_t(i)] < n) {
    p.floats[size_t(i)] = std::max(n, 2 * p.floats[size_t(i)]);
    p.bufs[size_t(i)] = be_.alloc(p.floats[size_t(i)] * sizeof(float));
  }
  return p.bufs[size_t(i)]->f32();
}

void Model::shard_weights() {
  Par& p = *par_;
  const io::ModelConfig& c = cfg_;
  const int64_t H = c.num_attention_heads, D = c.hidden_size;
  p.heads = dist::split(H, p.size, p.rank);
  for (const dist::Range& h : dist::split_all(H, p.size))
    p.attn_cols.push_back({h.begin * c.v_head_dim, h.end * c.v_head_dim});
  p.d = dist::split_all(D, p.size, 16);
  p.inter = dist::split_all(c.intermediate_size, p.size, 16);
  p.shared = dist::split_all(c.n_shared_experts * c.moe_intermediate_size, p.size, 16);
  p.vocab = dist::split_all(c.vocab_size, p.size, 16);
  p.experts = dist::split(c.n_routed_experts, p.size, p.rank);

  auto rows = [](WeightView& v, int64_t begin, int64_t n) {
    if (v.data) v = n > 0 ? v.row_slice(begin, n) : WeightView{};
  };
  auto mine = [&](WeightView& v, const std::vector<dist::Range>& parts) {
    rows(v, parts[size_t(p.rank)].begin, parts[size_t(p.rank)].size());
  };
  const int64_t h0 = p.heads.begin, Hl = p.heads.size();
  const int64_t dqk = c.qk_head_dim(), nope = c.qk_nope_head_dim, dv = c.v_head_dim, r = c.kv_lora_rank;
  for (size_t l = 0; l < w_.layers.size(); ++l) {
    LayerWeights& w = w_.layers[l];
    if (arch_.layers[l].attention == AttentionKind::Mla) {
      rows(w.q_proj, h0 * dqk, Hl * dqk);
      rows(w.q_b_proj, h0 * dqk, Hl * dqk);
      rows(w.kv_b_proj, h0 * (nope + dv), Hl * (nope + dv));
      rows(w.k_b_proj, h0 * r, Hl * r);
      rows(w.v_b_proj, h0 * dv, Hl * dv);
    }
    mine(w.o_proj, p.d);
    if (arch_.layers[l].ffn == FfnKind::Dense) {
      mine(w.gate_proj, p.inter);
      mine(w.up_proj, p.inter);
      mine(w.down_proj, p.d);
    } else {
      mine(w.shared.gate, p.shared);
      mine(w.shared.up, p.shared);
      mine(w.shared.down, p.d);
      for (int64_t e = 0; e < int64_t(w.experts.size()); ++e)
        if (!p.experts.contains(e)) w.experts[size_t(e)] = {};
    }
    mine(w.shared_head_head, p.vocab);
  }
  mine(w_.lm_head, p.vocab);
  // What this rank holds (shared tensors, e.g. a tied lm_head slice, counted once).
  uint64_t bytes = 0;
  std::vector<const void*> seen;
  for_each_weight(&w_, [&](WeightView& v, ops::WeightUse) {
    if (!v.data || std::find(seen.begin(), seen.end(), v.data) != seen.end()) return;
    seen.push_back(v.data);
    bytes += uint64_t(v.bytes()) + (v.scale ? uint64_t((v.row0 + v.rows + v.block_rows - 1) / v.block_rows) *
                                                  uint64_t(v.scale_cols) * 4
                                            : 0);
  });
  w_.bytes = bytes;
}

void Model::gather_cols(const float* part, int64_t T, const std::vector<dist::Range>& parts, float* dst,
                        int64_t lddst) {
  Par& p = *par_;
  std::vector<size_t> counts;
  int64_t total = 0;
  for (const dist::Range& r : parts) {
    counts.push_back(size_t(T * r.size()) * sizeof(float));
    total += r.size();
  }
  be_.sync();
  if (T == 1 && lddst >= total) {  // one row: the parts are already in column order
    p.comm->all_gather(part, dst, counts);
    return;
  }
  float* g = par_buf(0, size_t(T * total));
  p.comm->all_gather(part, g, counts);
  int64_t off = 0;
  for (const dist::Range& r : parts) {
    if (r.size() > 0) be_.copy({g + off, r.size(), dst + r.begin, lddst, T, r.size()});
    off += T * r.size();
  }
}

void Model::add_gathered(const float* y_part, int64_t T, const std::vector<dist::Range>& parts) {
  const int64_t D = cfg_.hidden_size;
  float* y = par_buf(1, size_t(T * D));
  gather_cols(y_part, T, parts, y, D);
  be_.add({s_->x->f32(), D, y, D, s_->x->f32(), D, T, D});
}

}  // namespace ds::model
