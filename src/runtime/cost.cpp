// SPDX-License-Identifier: MIT
#include "runtime/cost.h"

#include <algorithm>
#include <cmath>

#include "base/kv_rows.h"

namespace ds::rt {

namespace {
double bytes_of(const WeightView& v) {
  if (!v.data) return 0;
  double b = double(v.bytes());
  if (v.scale) b += double((v.rows + v.block_rows - 1) / v.block_rows) * double(v.scale_cols) * 4.0;
  return b;
}
double bytes_of(const ops::ExpertWeights& e) { return bytes_of(e.gate) + bytes_of(e.up) + bytes_of(e.down); }
// Decode (the absorbed form) reads the stored halves where the model has them, else kv_b_proj.
double kv_b_decode_bytes(const model::LayerWeights& L) {
  return L.k_b_proj.data ? bytes_of(L.k_b_proj) + bytes_of(L.v_b_proj) : bytes_of(L.kv_b_proj);
}
}  // namespace

DecodeBytes decode_bytes(const io::ModelConfig& c, const model::Weights& w, int64_t ctx, int64_t batch,
                         DType kv_dtype) {
  DecodeBytes d;
  for (int64_t l = 0; l < c.num_hidden_layers; ++l) {
    const model::LayerWeights& L = w.layers[l];
    d.attention += bytes_of(L.q_proj) + bytes_of(L.q_a_proj) + bytes_of(L.q_a_layernorm) + bytes_of(L.q_b_proj) +
                   bytes_of(L.kv_a_proj_with_mqa) + bytes_of(L.kv_a_layernorm) + kv_b_decode_bytes(L) +
                   bytes_of(L.o_proj) + bytes_of(L.input_layernorm) + bytes_of(L.post_attention_layernorm) +
                   bytes_of(L.k_proj) + bytes_of(L.v_proj) + bytes_of(L.q_bias) + bytes_of(L.k_bias) +
                   bytes_of(L.v_bias) + bytes_of(L.o_bias) + bytes_of(L.q_norm) + bytes_of(L.k_norm) +
                   bytes_of(L.index_wq_b) + bytes_of(L.index_wk) + bytes_of(L.index_k_norm) +
                   bytes_of(L.index_k_norm_bias) + bytes_of(L.index_weights_proj);
    if (!L.moe) {
      d.dense += bytes_of(L.gate_proj) + bytes_of(L.up_proj) + bytes_of(L.down_proj);
      continue;
    }
    d.router += bytes_of(L.gate) + bytes_of(L.e_score_correction_bias);
    d.shared += bytes_of(L.shared);
    // Distinct experts touched by `batch` independent tokens choosing k of E uniformly: E (1 - (1 - k/E)^B).
    const double E = double(c.n_routed_experts), k = double(c.num_experts_per_tok);
    const double distinct = batch == 1 ? k : E * (1.0 - std::pow(1.0 - k / E, double(batch)));
    d.routed += distinct * bytes_of(L.experts[0]);
  }
  d.lm_head = bytes_of(w.lm_head) + bytes_of(w.norm);
  const double row = double(kv_row_bytes(kv_dtype, c.kv_row_width()));  // bytes as stored (base/kv_rows.h)
  d.kv = double(batch) * double(ctx) * row * double(c.num_hidden_layers);
  if (c.indexer()) {  // the indexer reads every row's key; attention reads the latent of the index_topk chosen rows
    const double key = row * double(c.index_head_dim) / double(c.kv_row_width());
    d.kv = double(batch) * double(c.num_hidden_layers) *
           (double(ctx) * key + double(std::min(ctx, c.index_topk)) * (row - key));
  }
  return d;
}

std::vector<std::pair<const void*, size_t>> decode_read_set(const io::ModelConfig& c, const model::Weights& w) {
  std::vector<std::pair<const void*, size_t>> out;
  auto add = [&](const WeightView& v) {
    if (v.data) out.emplace_back(v.data, size_t(v.bytes()));
  };
  auto add_expert = [&](const ops::ExpertWeights& e) {
    add(e.gate);
    add(e.up);
    add(e.down);
  };
  for (int64_t l = 0; l < c.num_hidden_layers; ++l) {
    const model::LayerWeights& L = w.layers[l];
    for (const WeightView* v : {&L.q_proj, &L.q_a_proj, &L.q_a_layernorm, &L.q_b_proj, &L.kv_a_proj_with_mqa,
                                &L.kv_a_layernorm, L.k_b_proj.data ? &L.k_b_proj : &L.kv_b_proj, &L.v_b_proj, &L.o_proj, &L.input_layernorm,
                                &L.post_attention_layernorm, &L.gate_proj, &L.up_proj, &L.down_proj, &L.gate,
                                &L.k_proj, &L.v_proj, &L.q_bias, &L.k_bias, &L.v_bias, &L.o_bias, &L.q_norm, &L.k_norm,
                                &L.index_wq_b, &L.index_wk, &L.index_k_norm, &L.index_k_norm_bias,
                                &L.index_weights_proj})
      add(*v);
    if (!L.moe) continue;
    add_expert(L.shared);
    for (int64_t e = 0; e < c.num_experts_per_tok && e < int64_t(L.experts.size()); ++e) add_expert(L.experts[size_t(e)]);
  }
  add(w.lm_head);
  add(w.norm);
  return out;
}

double prefill_flops(const io::ModelConfig& c, int64_t n) {
  const double D = double(c.hidden_size), H = double(c.num_attention_heads), N = double(n);
  const double r = double(c.kv_lora_rank), dr = double(c.qk_rope_head_dim), nope = double(c.qk_nope_head_dim);
  const double dv = double(c.v_head_dim), dqk = nope + dr;
  double per_token = 0;  // multiply-adds per token, all layers
  double attn = 0;       // attention FLOPs, all layers
  for (int64_t l = 0; l < c.num_hidden_layers; ++l) {
    if (!c.mla()) {  // grouped-query: q, k, v, o projections; QK^T and PV over head_dim per q head
      const double hd = double(c.head_dim), kv = double(c.num_key_value_heads) * hd;
      per_token += D * H * hd + 2.0 * D * kv + H * hd * D + 3.0 * D * double(c.intermediate_size);
      attn += 2.0 * H * 2.0 * hd * N * (N + 1) / 2.0;
      continue;
    }
    per_token += c.q_lora_rank > 0 ? D * double(c.q_lora_rank) + double(c.q_lora_rank) * H * dqk : D * H * dqk;
    per_token += D * (r + dr) + r * H * (nope + dv) + H * dv * D;  // kv_a, kv_b (expansion), o_proj
    if (c.is_moe_layer(l)) {
      per_token += D * double(c.n_routed_experts);
      per_token += 3.0 * D * double(c.moe_intermediate_size) * double(c.num_experts_per_tok + c.n_shared_experts);
    } else {
      per_token += 3.0 * D * double(c.intermediate_size);
    }
    attn += 2.0 * H * (dqk + dv) * N * (N + 1) / 2.0;  // causal QK^T and PV
  }
  return 2.0 * per_token * N + attn + 2.0 * double(c.vocab_size) * D;
}

}  // namespace ds::rt
