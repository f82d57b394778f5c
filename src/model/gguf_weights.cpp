// SPDX-License-Identifier: MIT
#include "model/gguf_weights.h"

#include <cstring>

#include "base/error.h"

namespace ds::model {

namespace {

DType dtype_of(const io::GgufModel& m, const io::GgufTensor& t) {
  switch (t.type) {
    case 0: return DType::F32;
    case 1: return DType::F16;
    case 30: return DType::BF16;
    default:
      fail(m.first().path(), ": tensor '", t.name, "' is ", io::ggml_type_info(t.type)->name,
           ": quantised GGUF tensor types are not supported yet (F32, F16 and BF16 files load)");
  }
}

// ggml ne (fastest first) -> row-major shape (slowest first).
std::vector<int64_t> shape_of(const io::GgufTensor& t) { return std::vector<int64_t>(t.ne.rbegin(), t.ne.rend()); }

}  // namespace

GgufWeights::GgufWeights(const io::GgufModel& m, const io::ModelConfig& c) : m_(m) {
  const std::string src = m.first().path();
  auto raw = [&](const io::GgufTensor& t) { return RawTensor{t.data, dtype_of(m, t), shape_of(t)}; };
  auto put = [&](const std::string& hf, const std::string& gg) {
    if (const io::GgufTensor* t = m.tensor(gg)) t_[hf] = raw(*t);
  };
  put("model.embed_tokens.weight", "token_embd.weight");
  put("model.norm.weight", "output_norm.weight");
  put("lm_head.weight", "output.weight");
  const int64_t H = c.num_attention_heads, r = c.kv_lora_rank, nope = c.qk_nope_head_dim, v = c.v_head_dim;
  for (int64_t l = 0; l < c.num_hidden_layers; ++l) {
    const std::string b = "blk." + std::to_string(l) + ".", p = "model.layers." + std::to_string(l) + ".";
    const std::string a = p + "self_attn.", f = p + "mlp.";
    put(p + "input_layernorm.weight", b + "attn_norm.weight");
    put(p + "post_attention_layernorm.weight", b + "ffn_norm.weight");
    put(a + "q_a_proj.weight", b + "attn_q_a.weight");
    put(a + "q_a_layernorm.weight", b + "attn_q_a_norm.weight");
    put(a + "q_b_proj.weight", b + "attn_q_b.weight");
    put(a + "q_proj.weight", b + "attn_q.weight");
    put(a + "kv_a_proj_with_mqa.weight", b + "attn_kv_a_mqa.weight");
    put(a + "kv_a_layernorm.weight", b + "attn_kv_a_norm.weight");
    put(a + "kv_b_proj.weight", b + "attn_kv_b.weight");
    put(a + "o_proj.weight", b + "attn_output.weight");
    put(f + "gate_proj.weight", b + "ffn_gate.weight");
    put(f + "up_proj.weight", b + "ffn_up.weight");
    put(f + "down_proj.weight", b + "ffn_down.weight");
    put(f + "gate.weight", b + "ffn_gate_inp.weight");
    put(f + "gate.e_score_correction_bias", b + "exp_probs_b.bias");
    put(f + "shared_experts.gate_proj.weight", b + "ffn_gate_shexp.weight");
    put(f + "shared_experts.up_proj.weight", b + "ffn_up_shexp.weight");
    put(f + "shared_experts.down_proj.weight", b + "ffn_down_shexp.weight");
    // Stacked experts: expert e is rows [e * R, (e + 1) * R) of the [E * R, C] view.
    for (const char* w : {"gate", "up", "down"}) {
      const io::GgufTensor* t = m.tensor(b + "ffn_" + w + "_exps.weight");
      if (!t) continue;
      DS_CHECK(t->ne.size() == 3 && t->ne[2] == c.n_routed_experts, src, ": ", t->name, " must be [", c.n_routed_experts,
               " experts, rows, cols]");
      const DType dt = dtype_of(m, *t);
      const size_t per = size_t(t->ne[0] * t->ne[1]) * size_t(dtype_size(dt));
      for (int64_t e = 0; e < t->ne[2]; ++e)
        t_[f + "experts." + std::to_string(e) + "." + w + "_proj.weight"] =
            RawTensor{t->data + size_t(e) * per, dt, {t->ne[1], t->ne[0]}};
    }
    // Split MLA layout: kv_b_proj rows of head h are W_UK[h] = attn_k_b[h]^T ([nope, r]) then W_UV[h] = attn_v_b[h].
    const io::GgufTensor* kb = m.tensor(b + "attn_k_b.weight");
    const io::GgufTensor* vb = m.tensor(b + "attn_v_b.weight");
    if (kb || vb) {
      DS_CHECK(kb && vb, src, ": layer ", l, " has only one of attn_k_b / attn_v_b");
      DS_CHECK(kb->ne == (std::vector<int64_t>{nope, r, H}) && vb->ne == (std::vector<int64_t>{r, v, H}), src,
               ": layer ", l, ": attn_k_b / attn_v_b shapes do not match the config (nope ", nope, ", rank ", r,
               ", v ", v, ", heads ", H, ")");
      const DType dk = dtype_of(m, *kb), dv = dtype_of(m, *vb);
      DS_CHECK(dk == dv, src, ": layer ", l, ": attn_k_b and attn_v_b have different types");
      const size_t es = size_t(dtype_size(dk));
      owned_.emplace_back(size_t(H * (nope + v) * r) * es);
      uint8_t* out = owned_.back().data();
      for (int64_t h = 0; h < H; ++h) {
        uint8_t* head = out + size_t(h * (nope + v) * r) * es;
        const uint8_t* k = kb->data + size_t(h * r * nope) * es;  // [r, nope]
        for (int64_t i = 0; i < nope; ++i)
          for (int64_t j = 0; j < r; ++j) std::memcpy(head + size_t(i * r + j) * es, k + size_t(j * nope + i) * es, es);
        std::memcpy(head + size_t(nope * r) * es, vb->data + size_t(h * v * r) * es, size_t(v * r) * es);
      }
      t_[a + "kv_b_proj.weight"] = RawTensor{out, dk, {H * (nope + v), r}};
    }
  }
}

TensorLookup GgufWeights::lookup() const {
  return [this](const std::string& name, RawTensor* out) {
    auto it = t_.find(name);
    if (it == t_.end()) return false;
    *out = it->second;
    return true;
  };
}

std::vector<std::string> GgufWeights::names() const {
  std::vector<std::string> r;
  for (const auto& kv : t_) r.push_back(kv.first);
  return r;
}

void GgufWeights::release(const void* p, size_t n) const {
  for (const auto& part : m_.parts()) part->release(p, n);
}

}  // namespace ds::model
