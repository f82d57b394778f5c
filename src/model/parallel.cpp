// SPDX-License-Identifier: MIT
// Tensor and expert parallelism across the ranks of a dist::Comm (docs/SCALING.md). Each rank holds a slice of the
// weights, cut here before the backend prepares them (so a rank never copies, or touches through the mapping, what
// it does not compute):
//  - MLA attention heads: q_proj / q_b_proj, kv_b_proj (and a GGUF's k_b_proj / v_b_proj) rows of this rank's heads.
//    The latent projections (q_a, kv_a) are replicated, so every rank writes the whole latent cache.
//  - Row-parallel products: o_proj, the dense and shared MLPs' gate/up and down, and lm_head compute this rank's
//    output rows (hidden columns in units of 16); the full activation is gathered from every rank. Each output value
//    is one whole dot product as in one process, so attention, dense MLPs and logits are bitwise the one-process
//    values.
//  - Routed experts: this rank's contiguous range; the others' views are left empty (never loaded), and the MoE op
//    skips them. Each rank computes the (token, slot) pairs routed to its experts; the output rows are gathered
//    from every rank and added in the one-process order (moe_parallel). So every result is bitwise the one-process
//    result. (Summing each rank's partial MoE output instead moves N·T·D floats instead of T·k·D, but re-associates
//    the sum: ~1e-6 on the logits, enough to move logprobs and flip near-ties.)
//  - Grouped-query attention (the dense distills): kv heads split, each rank with the query heads of its kv heads
//    (its rows of q_proj, k_proj, v_proj and their biases). Unlike MLA's latent cache, each rank's cache holds only
//    its kv heads' K and V (rows of 2 · its kv heads · head_dim values), so the cache is split too. Replicated
//    instead (only o_proj split) when there are fewer kv heads than ranks, or with an fp8 cache whose scale tiles
//    would straddle heads (head_dim not a multiple of kKvTile: the tiles of a shorter row would differ).
// Collectives per decoder layer: attention 2 gathers (heads' outputs, o_proj rows; GQA replicated: 1); dense MLP 2
// gathers; MoE 3 gathers (shared hidden and output, routed rows); lm_head 1 gather.
#include <algorithm>

#include "base/error.h"
#include "base/kv_rows.h"
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
  p.experts_all = dist::split_all(c.n_routed_experts, p.size);
  p.experts = p.experts_all[size_t(p.rank)];

  auto rows = [](WeightView& v, int64_t begin, int64_t n) {
    if (v.data) v = n > 0 ? v.row_slice(begin, n) : WeightView{};
  };
  auto mine = [&](WeightView& v, const std::vector<dist::Range>& parts) {
    if (p.tp) rows(v, parts[size_t(p.rank)].begin, parts[size_t(p.rank)].size());
  };
  const int64_t h0 = p.heads.begin, Hl = p.heads.size();
  // Grouped-query attention: split by kv head when every rank gets one and the cache rows stay exact (see above).
  const int64_t Hkv = c.num_key_value_heads, hd = c.head_dim;
  const bool all_gqa = std::all_of(arch_.layers.begin(), arch_.layers.end(),
                                   [](const LayerDesc& d) { return d.attention == AttentionKind::Gqa; });
  p.gqa_split = p.tp && all_gqa && !arch_.layers.empty() && Hkv >= p.size && H % Hkv == 0 &&
                (opt_.kv_dtype != DType::F8_E4M3 || hd % kKvTile == 0);
  if (p.gqa_split) {
    const int64_t G = H / Hkv;
    p.kv_heads = dist::split(Hkv, p.size, p.rank);
    for (const dist::Range& k : dist::split_all(Hkv, p.size)) p.gqa_cols.push_back({k.begin * G * hd, k.end * G * hd});
    const int64_t k0 = p.kv_heads.begin, kn = p.kv_heads.size();
    for (size_t l = 0; l < w_.layers.size(); ++l) {
      LayerWeights& w = w_.layers[l];
      rows(w.q_proj, k0 * G * hd, kn * G * hd);
      rows(w.k_proj, k0 * hd, kn * hd);
      rows(w.v_proj, k0 * hd, kn * hd);
      Biases& b = biases_[l];  // fp32 copies of the whole rows (Model's constructor): this rank's part
      if (b.q) b.q += k0 * G * hd;
      if (b.k) b.k += k0 * hd;
      if (b.v) b.v += k0 * hd;
    }
    arch_.kv_width = 2 * kn * hd;  // this rank's cache rows: K then V of its kv heads
  }
  const int64_t dqk = c.qk_head_dim(), nope = c.qk_nope_head_dim, dv = c.v_head_dim, r = c.kv_lora_rank;
  for (size_t l = 0; l < w_.layers.size(); ++l) {
    LayerWeights& w = w_.layers[l];
    if (p.tp && arch_.layers[l].mla()) {
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
      for (int64_t e = 0; e < int64_t(w.experts.size()) && p.ep; ++e)
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

void Model::moe_parallel(const ops::MoeParams& mp) {
  Par& p = *par_;
  const int64_t TK = mp.T * mp.k, D = mp.D;
  std::vector<int32_t> ids(static_cast<size_t>(TK));
  be_.download(ids.data(), mp.ids, ids.size() * sizeof(int32_t));
  // Owner of each pair's expert, this rank's pairs numbered in (token, slot) order, and where each pair's row lands
  // in the gathered block (ranks' rows one after another).
  std::vector<int64_t> count(size_t(p.size), 0);
  std::vector<int32_t> own_row(static_cast<size_t>(TK), 0), idx(static_cast<size_t>(TK)), owner(static_cast<size_t>(TK));
  for (int64_t i = 0; i < TK; ++i) {
    int r = 0;
    while (!p.experts_all[size_t(r)].contains(ids[size_t(i)])) ++r;
    owner[size_t(i)] = r;
    idx[size_t(i)] = int32_t(count[size_t(r)]++);
  }
  std::vector<int64_t> first(size_t(p.size), 0);
  for (int r = 1; r < p.size; ++r) first[size_t(r)] = first[size_t(r) - 1] + count[size_t(r) - 1];
  std::vector<int32_t> gathered_row(static_cast<size_t>(TK));
  for (int64_t i = 0; i < TK; ++i) {
    gathered_row[size_t(i)] = int32_t(first[size_t(owner[size_t(i)])] + idx[size_t(i)]);
    own_row[size_t(i)] = owner[size_t(i)] == p.rank ? idx[size_t(i)] : 0;
  }
  int32_t* rows = reinterpret_cast<int32_t*>(par_buf(6, size_t(TK)));
  be_.upload(rows, own_row.data(), own_row.size() * sizeof(int32_t));
  ops::MoeParams q = mp;
  q.slot_out = par_buf(7, size_t(std::max<int64_t>(count[size_t(p.rank)], 1) * D));
  q.slot_row = rows;
  be_.moe(q);
  std::vector<size_t> bytes;
  for (int r = 0; r < p.size; ++r) bytes.push_back(size_t(count[size_t(r)] * D) * sizeof(float));
  float* all = par_buf(8, size_t(std::max<int64_t>(TK, 1) * D));
  be_.sync();
  p.comm->all_gather(q.slot_out, all, bytes);
  be_.upload(rows, gathered_row.data(), gathered_row.size() * sizeof(int32_t));
  q.slot_out = nullptr;
  q.slot_in = all;
  be_.moe(q);
}

}  // namespace ds::model
