// SPDX-License-Identifier: MIT
#include "model/gguf_weights.h"

#include <cstring>

#include "base/error.h"
#include "base/quant.h"

namespace ds::model {

namespace {

// The weight format of a tensor: F32, F16, BF16 or a ggml block format with a descriptor (base/quant.h), found by
// ggml's type name.
DType dtype_of(const io::GgufModel& m, const io::GgufTensor& t) {
  const std::string_view name = io::ggml_type_info(t.type)->name;
  for (int i = 0; i <= int(DType::IQ1_M); ++i) {
    const DType d = DType(i);
    if (dtype_name(d) == name && (d == DType::F32 || d == DType::F16 || d == DType::BF16 || is_block_dtype(d)) &&
        quant_format(d))
      return d;
  }
  fail(m.first().path(), ": tensor '", t.name, "' has ggml type ", name,
       ", which deepseek.cpp does not compute with (F32, F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q2_K-Q6_K, IQ1_S, "
       "IQ1_M, IQ2_XXS, IQ2_XS, IQ2_S, IQ3_XXS, IQ3_S, IQ4_NL, IQ4_XS load)");
}

// All elements of a tensor in fp32, exactly (its rows dequantised one by one).
std::vector<float> to_f32(const io::GgufModel& m, const io::GgufTensor& t) {
  const QuantFormat* f = quant_format(dtype_of(m, t));
  const int64_t cols = t.ne[0], rows = t.numel() / cols, rb = row_bytes(f->type, cols);
  std::vector<float> out(size_t(rows * cols));
  for (int64_t r = 0; r < rows; ++r) f->to_f32(t.data + r * rb, out.data() + r * cols, cols);
  return out;
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
    // Grouped-query layers (qwen2, llama, qwen3)
    put(a + "k_proj.weight", b + "attn_k.weight");
    put(a + "v_proj.weight", b + "attn_v.weight");
    put(a + "q_proj.bias", b + "attn_q.bias");
    put(a + "k_proj.bias", b + "attn_k.bias");
    put(a + "v_proj.bias", b + "attn_v.bias");
    put(a + "o_proj.bias", b + "attn_output.bias");
    put(a + "q_norm.weight", b + "attn_q_norm.weight");
    put(a + "k_norm.weight", b + "attn_k_norm.weight");
    put(a + "kv_a_proj_with_mqa.weight", b + "attn_kv_a_mqa.weight");
    put(a + "kv_a_layernorm.weight", b + "attn_kv_a_norm.weight");
    put(a + "kv_b_proj.weight", b + "attn_kv_b.weight");
    put(a + "o_proj.weight", b + "attn_output.weight");
    put(a + "indexer.wq_b.weight", b + "indexer.attn_q_b.weight");  // deepseek32 (V3.2)
    put(a + "indexer.wk.weight", b + "indexer.attn_k.weight");
    put(a + "indexer.k_norm.weight", b + "indexer.k_norm.weight");
    put(a + "indexer.k_norm.bias", b + "indexer.k_norm.bias");
    put(a + "indexer.weights_proj.weight", b + "indexer.proj.weight");
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
      const size_t per = size_t(row_bytes(dt, t->ne[0]) * t->ne[1]);
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
      // Elements are moved one by one (attn_k_b is transposed), so block formats (whose blocks run along the
      // other axis) are dequantised to F32 first, exactly; both halves then share one element type.
      DType dt = dtype_of(m, *kb);
      const uint8_t *kd = kb->data, *vd = vb->data;
      std::vector<float> kf, vf;
      if (dt != dtype_of(m, *vb) || is_block_dtype(dt)) {
        kf = to_f32(m, *kb);
        vf = to_f32(m, *vb);
        kd = reinterpret_cast<const uint8_t*>(kf.data());
        vd = reinterpret_cast<const uint8_t*>(vf.data());
        dt = DType::F32;
      }
      const size_t es = size_t(dtype_size(dt));
      owned_.emplace_back(size_t(H * (nope + v) * r) * es);
      uint8_t* out = owned_.back().data();
      for (int64_t h = 0; h < H; ++h) {
        uint8_t* head = out + size_t(h * (nope + v) * r) * es;
        const uint8_t* k = kd + size_t(h * r * nope) * es;  // [r, nope]
        for (int64_t i = 0; i < nope; ++i)
          for (int64_t j = 0; j < r; ++j) std::memcpy(head + size_t(i * r + j) * es, k + size_t(j * nope + i) * es, es);
        std::memcpy(head + size_t(nope * r) * es, vd + size_t(h * v * r) * es, size_t(v * r) * es);
      }
      t_[a + "kv_b_proj.weight"] = RawTensor{out, dt, {H * (nope + v), r}};
      // The halves as stored, for the absorbed form: attn_k_b [H, r, nope] is W_UK[h] transposed, row-major with its
      // blocks along nope, so q_lat[h] = q_nope[h] · W_UK[h] is a plain product with it; attn_v_b [H, v, r] is W_UV.
      t_[a + "k_b_proj.weight"] = RawTensor{kb->data, dtype_of(m, *kb), {H * r, nope}};
      t_[a + "v_b_proj.weight"] = RawTensor{vb->data, dtype_of(m, *vb), {H * v, r}};
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
