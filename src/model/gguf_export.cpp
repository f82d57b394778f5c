// SPDX-License-Identifier: MIT
// GGUF tensor plan and llama.cpp's per-tensor type rules (see gguf_export.h).
#include "model/gguf_export.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>

#include "base/error.h"
#include "base/quant.h"

namespace ds::model {

namespace {

// llama_ftype values (llama.h).
enum : uint32_t {
  kF32 = 0, kF16 = 1, kQ4_0 = 2, kQ8_0 = 7, kQ5_0 = 8, kQ4_K_S = 14, kQ4_K_M = 15, kQ5_K_S = 16, kQ5_K_M = 17,
  kQ6_K = 18, kBF16 = 32,
};

bool has(const std::string& s, const char* part) { return s.find(part) != std::string::npos; }
bool ends_with(const std::string& s, const char* tail) {
  const size_t n = std::char_traits<char>::length(tail);
  return s.size() >= n && s.compare(s.size() - n, n, tail) == 0;
}

// llama-quant.cpp's tensor categories (broad, by name).
enum class Cat { Output, TokenEmbd, AttnQkv, AttnKvB, AttnV, AttnK, AttnQ, AttnOutput, FfnUp, FfnGate, FfnDown, Other };

Cat category(const std::string& n) {
  if (n == "output.weight") return Cat::Output;
  if (n == "token_embd.weight") return Cat::TokenEmbd;
  if (has(n, "attn_qkv.weight")) return Cat::AttnQkv;
  if (has(n, "attn_kv_b.weight")) return Cat::AttnKvB;
  if (has(n, "attn_v.weight")) return Cat::AttnV;
  if (has(n, "attn_k.weight")) return Cat::AttnK;
  if (has(n, "attn_q.weight")) return Cat::AttnQ;
  if (has(n, "attn_output.weight")) return Cat::AttnOutput;
  if (has(n, "ffn_up")) return Cat::FfnUp;
  if (has(n, "ffn_gate")) return Cat::FfnGate;
  if (has(n, "ffn_down")) return Cat::FfnDown;
  return Cat::Other;
}

bool attn_v_like(Cat c) { return c == Cat::AttnV || c == Cat::AttnQkv || c == Cat::AttnKvB; }

// ggml_n_dims: trailing dimensions of 1 do not count.
int n_dims(const std::vector<int64_t>& ne) {
  int n = 1;
  for (size_t i = 1; i < ne.size(); ++i)
    if (ne[i] > 1) n = int(i) + 1;
  return n;
}

// llama-quant.cpp tensor_allows_quantization, for the names a deepseek2 file has.
bool quantizable(const std::string& name, const std::vector<int64_t>& ne) {
  return n_dims(ne) >= 2 && ends_with(name, "weight") && !has(name, "_norm.weight") &&
         !has(name, "ffn_gate_inp.weight");
}

bool use_more_bits(int i, int n) { return i < n / 8 || i >= 7 * n / 8 || (i - n / 8) % 3 == 2; }

int block_of(DType t) { return quant_format(t)->block; }

// llama-quant.cpp tensor_type_fallback: a type whose block does not divide ne[0] falls back to a 32-block one, and
// to F16 when not even that fits.
DType shape_fallback(DType t, int64_t ne0) {
  if (ne0 % block_of(t) == 0) return t;
  switch (t) {
    case DType::Q4_K: t = DType::Q5_0; break;
    case DType::Q5_K: t = DType::Q5_1; break;
    case DType::Q6_K: t = DType::Q8_0; break;
    case DType::Q2_K: case DType::Q3_K: t = DType::Q4_0; break;
    default: break;  // already a 32-element type: F16 below
  }
  return ne0 % block_of(t) == 0 ? t : DType::F16;
}

int layer_of(const std::string& name) {
  int l = -1;
  if (std::sscanf(name.c_str(), "blk.%d.", &l) != 1) return -1;
  return l;
}

// llama_model_loader's weight_name_comparer: tensors without a layer first, then by layer, then by name.
bool loader_less(const std::string& a, const std::string& b) {
  const int la = layer_of(a), lb = layer_of(b);
  return la != lb ? la < lb : a < b;
}

using Rows = std::function<void(int64_t, int64_t, float*)>;

Rows view_rows(const WeightView& v) {
  return [v](int64_t r0, int64_t n, float* out) {
    for (int64_t i = 0; i < n; ++i) v.row_f32(r0 + i, out + i * v.cols);
  };
}

// Experts stacked: rows [e * R, (e + 1) * R) are expert e's matrix.
Rows stacked_rows(std::vector<WeightView> ex) {
  return [ex = std::move(ex)](int64_t r0, int64_t n, float* out) {
    const int64_t R = ex[0].rows, C = ex[0].cols;
    for (int64_t i = 0; i < n; ++i) ex[size_t((r0 + i) / R)].row_f32((r0 + i) % R, out + i * C);
  };
}

// Torch's float32 arithmetic, one rounding per operation: the volatile keeps the compiler from fusing a multiply
// and an add (-march=native brings FMA), which would round once for both.
float f32(float x) {
  volatile float v = x;
  return v;
}

// LlamaModel.permute: row (h, j, k) of the output (head h, pair j, k = 0 / 1 its two members) is row (h, k, j) of the
// HF tensor, whose heads hold the first members of all pairs, then the second ones.
int64_t permuted_row(int64_t r, int64_t head_dim) {
  const int64_t h = r / head_dim, i = r % head_dim;
  return h * head_dim + (i % 2) * (head_dim / 2) + i / 2;
}

Rows permuted_rows(const WeightView& v, int64_t head_dim) {
  return [v, head_dim](int64_t r0, int64_t n, float* out) {
    for (int64_t i = 0; i < n; ++i) v.row_f32(permuted_row(r0 + i, head_dim), out + i * v.cols);
  };
}

// A bias is one row: its elements are permuted as the weight's rows.
Rows permuted_vector(const WeightView& v, int64_t head_dim) {
  return [v, head_dim](int64_t r0, int64_t n, float* out) {
    DS_ASSERT(r0 == 0 && n == 1);
    std::vector<float> row(size_t(v.cols));
    v.row_f32(0, row.data());
    for (int64_t i = 0; i < v.cols; ++i) out[i] = row[size_t(permuted_row(i, head_dim))];
  };
}

}  // namespace

bool llama_70b_type(const io::ModelConfig& c) {
  // llama_model_llama / llama_model_qwen2 ::load_arch_hparams (llama: 80 layers with as many kv heads is 65B).
  if (c.num_hidden_layers != 80 || c.mla()) return false;
  if (c.model_type == "llama") return c.num_key_value_heads != c.num_attention_heads;
  return c.model_type == "qwen2";
}

std::vector<float> llama3_rope_freqs(const io::ModelConfig& c) {
  const io::RopeScaling& rs = c.rope_scaling;
  if (c.mla() || c.model_type != "llama" || rs.type != io::RopeType::Llama3) return {};
  const int64_t dim = c.head_dim;
  // freqs = 1 / base ** (arange(0, dim, 2, float32) / dim); then per frequency, Python scalars meeting float32
  // tensors (which keep float32): wavelen = 2 pi / freq is reciprocal(freq) * 2 pi, old_ctx / wavelen likewise.
  const float base = float(c.rope_theta), factor = float(rs.factor), lo = float(rs.low_freq_factor),
              old_ctx = float(rs.original_max_position_embeddings);
  const float lo_wavelen = float(double(rs.original_max_position_embeddings) / rs.low_freq_factor);
  const float hi_wavelen = float(double(rs.original_max_position_embeddings) / rs.high_freq_factor);
  const float band = float(rs.high_freq_factor - rs.low_freq_factor);
  std::vector<float> out;
  for (int64_t i = 0; i < dim / 2; ++i) {
    const float freq = f32(1.0f / f32(powf(base, f32(float(2 * i) / float(dim)))));
    const float wavelen = f32(f32(1.0f / freq) * float(2 * M_PI));
    if (wavelen < hi_wavelen) {
      out.push_back(1.0f);
    } else if (wavelen > lo_wavelen) {
      out.push_back(factor);
    } else {
      const float smooth = f32(f32(f32(f32(1.0f / wavelen) * old_ctx) - lo) / band);
      out.push_back(f32(1.0f / f32(f32(f32(1.0f - smooth) / factor) + smooth)));
    }
  }
  return out;
}

const std::vector<QuantRecipe>& quant_recipes() {
  static const std::vector<QuantRecipe> r = {
      {"F32", kF32, DType::F32, "fp32, exact (bf16 and fp8 checkpoints convert losslessly); 4 bytes/weight"},
      {"F16", kF16, DType::F16, "fp16 (10-bit mantissa, range +-65504); 2 bytes/weight"},
      {"BF16", kBF16, DType::BF16, "bf16: exact for bf16 checkpoints; 2 bytes/weight"},
      {"Q8_0", kQ8_0, DType::Q8_0, "8-bit, one f16 scale per 32 weights; 8.5 bits/weight, near lossless"},
      {"Q6_K", kQ6_K, DType::Q6_K, "6-bit K-quant; 6.56 bits/weight"},
      {"Q5_K_M", kQ5_K_M, DType::Q5_K,
       "5-bit K-quant, output and half of the ffn_down layers Q6_K; ~5.7 bits/weight"},
      {"Q5_K_S", kQ5_K_S, DType::Q5_K, "5-bit K-quant, output Q6_K; 5.5 bits/weight"},
      {"Q4_K_M", kQ4_K_M, DType::Q4_K,
       "4-bit K-quant, output and half of the ffn_down layers Q6_K (llama.cpp's usual choice); ~4.9 bits/weight"},
      {"Q4_K_S", kQ4_K_S, DType::Q4_K, "4-bit K-quant, output Q6_K, first ffn_down layers Q5_K; ~4.6 bits/weight"},
      {"Q5_0", kQ5_0, DType::Q5_0, "legacy 5-bit, one f16 scale per 32 weights; 5.5 bits/weight"},
      {"Q4_0", kQ4_0, DType::Q4_0, "legacy 4-bit, one f16 scale per 32 weights; 4.5 bits/weight"},
  };
  return r;
}

const QuantRecipe* find_recipe(const std::string& name) {
  std::string up = name;
  for (char& ch : up) ch = char(std::toupper(static_cast<unsigned char>(ch)));
  for (const QuantRecipe& r : quant_recipes())
    if (up == r.name) return &r;
  return nullptr;
}

std::vector<DType> recipe_types(const QuantRecipe& r,
                                const std::vector<std::pair<std::string, std::vector<int64_t>>>& tensors,
                                int64_t n_expert, int64_t n_layer, bool type_70b) {
  const bool block = is_block_dtype(r.base);
  bool tied = true;
  int n_attention_wv = 0;
  for (const auto& [name, ne] : tensors) {
    if (category(name) == Cat::Output) tied = false;
    if (attn_v_like(category(name))) ++n_attention_wv;
  }
  int i_attention_wv = 0, i_ffn_down = 0;
  const uint32_t ft = r.ftype;
  std::vector<DType> out;
  for (const auto& [name, ne] : tensors) {
    if (!quantizable(name, ne)) {
      out.push_back(DType::F32);
      continue;
    }
    DType t = r.base;
    if (!block) {  // F32 / F16 / BF16: no mixture, no fallback
      out.push_back(t);
      continue;
    }
    const Cat c = category(name);
    if (c == Cat::Output || (tied && c == Cat::TokenEmbd)) {
      if (ne[0] % block_of(t) != 0) t = DType::Q8_0;
      else if (t != DType::Q8_0) t = DType::Q6_K;
    } else if (c == Cat::TokenEmbd) {
      // the base type
    } else if (attn_v_like(c)) {
      if ((ft == kQ4_K_M || ft == kQ5_K_M) && use_more_bits(i_attention_wv, n_attention_wv)) t = DType::Q6_K;
      else if (ft == kQ4_K_S && i_attention_wv < 4) t = DType::Q5_K;
      // 70B: 8 heads share each kv head, so attn_v is small; more bits cost little.
      if (type_70b && (t == DType::Q3_K || t == DType::Q4_K)) t = DType::Q5_K;
      if (n_expert == 8) t = DType::Q8_0;
      ++i_attention_wv;
    } else if (c == Cat::AttnK) {
      if (n_expert == 8) t = DType::Q8_0;
    } else if (c == Cat::FfnDown) {
      // Models with experts take the layer from the name; others count ffn_down tensors in loader order.
      const int il = n_expert > 1 ? layer_of(name) : i_ffn_down, nl = int(n_layer);
      DS_CHECK(il >= 0 && il < nl, "quantize: tensor '", name, "' is not in a layer below ", nl);
      if (ft == kQ4_K_M) {
        if (use_more_bits(il, nl)) t = DType::Q6_K;
      } else if (ft == kQ5_K_M && use_more_bits(il, nl)) {
        t = DType::Q6_K;
      } else if (ft == kQ4_K_S && il < nl / 8) {
        t = DType::Q5_K;
      }
      ++i_ffn_down;
    } else if (c == Cat::AttnOutput) {
      if (n_expert == 8 && (ft == kQ4_K_S || ft == kQ4_K_M)) t = DType::Q5_K;
    } else if (c == Cat::AttnQkv) {
      if (ft == kQ4_K_M) t = DType::Q5_K;
      else if (ft == kQ5_K_M) t = DType::Q6_K;
    }
    out.push_back(shape_fallback(t, ne[0]));
  }
  return out;
}

namespace {

using Plan = std::vector<GgufTensorPlan>;

// Vectors (norms, biases) are 1-D: WeightView rows == 1 for them.
void add_vec(Plan& p, const std::string& name, const WeightView& v) {
  DS_ASSERT(v.data && v.rows == 1);
  p.push_back({name, {v.cols}, DType::F32, view_rows(v)});
}
void add_mat(Plan& p, const std::string& name, const WeightView& v) {
  DS_ASSERT(v.data);
  p.push_back({name, {v.cols, v.rows}, DType::F32, view_rows(v)});
}

// DeepseekV2Model's tensors of the decoder layers.
void plan_mla_layers(const io::ModelConfig& c, const Weights& w, Plan& p) {
  const int64_t H = c.num_attention_heads, nope = c.qk_nope_head_dim, vd = c.v_head_dim, rank = c.kv_lora_rank;
  for (int64_t l = 0; l < c.num_hidden_layers; ++l) {
    const LayerWeights& L = w.layers[size_t(l)];
    const std::string b = "blk." + std::to_string(l) + ".";
    add_vec(p, b + "attn_norm.weight", L.input_layernorm);
    if (c.q_lora_rank > 0) {
      add_mat(p, b + "attn_q_a.weight", L.q_a_proj);
      add_vec(p, b + "attn_q_a_norm.weight", L.q_a_layernorm);
      add_mat(p, b + "attn_q_b.weight", L.q_b_proj);
    } else {
      add_mat(p, b + "attn_q.weight", L.q_proj);
    }
    add_mat(p, b + "attn_kv_a_mqa.weight", L.kv_a_proj_with_mqa);
    add_vec(p, b + "attn_kv_a_norm.weight", L.kv_a_layernorm);
    if (c.indexer()) {  // DeepSeek-V3.2's lightning indexer, under llama.cpp's deepseek32 names
      add_mat(p, b + "indexer.attn_q_b.weight", L.index_wq_b);
      add_mat(p, b + "indexer.attn_k.weight", L.index_wk);
      add_vec(p, b + "indexer.k_norm.weight", L.index_k_norm);
      add_vec(p, b + "indexer.k_norm.bias", L.index_k_norm_bias);
      add_mat(p, b + "indexer.proj.weight", L.index_weights_proj);
    }
    // kv_b_proj [H * (nope + v), rank]: head h's rows are W_UK[h] ([nope, rank]) then W_UV[h] ([v, rank]).
    const WeightView kvb = L.kv_b_proj;
    p.push_back({b + "attn_k_b.weight", {nope, rank, H}, DType::F32,
                 [kvb, nope, vd, rank](int64_t r0, int64_t n, float* out) {
                   // Row (h, j) of attn_k_b is column j of W_UK[h]: dequantise the head's nope rows, transpose.
                   std::vector<float> head(size_t(nope * rank));
                   for (int64_t k = r0; k < r0 + n;) {
                     const int64_t h = k / rank, end = std::min(r0 + n, (h + 1) * rank);
                     for (int64_t i = 0; i < nope; ++i) kvb.row_f32(h * (nope + vd) + i, head.data() + i * rank);
                     for (; k < end; ++k)
                       for (int64_t i = 0; i < nope; ++i) out[(k - r0) * nope + i] = head[size_t(i * rank + k % rank)];
                   }
                 }});
    p.push_back({b + "attn_v_b.weight", {rank, vd, H}, DType::F32, [kvb, nope, vd](int64_t r0, int64_t n, float* out) {
                   for (int64_t k = r0; k < r0 + n; ++k)
                     kvb.row_f32((k / vd) * (nope + vd) + nope + k % vd, out + (k - r0) * kvb.cols);
                 }});
    add_mat(p, b + "attn_output.weight", L.o_proj);
    add_vec(p, b + "ffn_norm.weight", L.post_attention_layernorm);
    if (!L.moe) {
      add_mat(p, b + "ffn_gate.weight", L.gate_proj);
      add_mat(p, b + "ffn_up.weight", L.up_proj);
      add_mat(p, b + "ffn_down.weight", L.down_proj);
      continue;
    }
    add_mat(p, b + "ffn_gate_inp.weight", L.gate);
    if (L.e_score_correction_bias.data) add_vec(p, b + "exp_probs_b.bias", L.e_score_correction_bias);
    const char* names[3] = {"gate", "up", "down"};
    for (int k = 0; k < 3; ++k) {
      std::vector<WeightView> ex;
      for (const ops::ExpertWeights& e : L.experts) ex.push_back(k == 0 ? e.gate : k == 1 ? e.up : e.down);
      const int64_t E = int64_t(ex.size()), R = ex[0].rows, C = ex[0].cols;
      p.push_back({b + "ffn_" + names[k] + "_exps.weight", {C, R, E}, DType::F32, stacked_rows(std::move(ex))});
    }
    if (L.shared.gate.data) {
      add_mat(p, b + "ffn_gate_shexp.weight", L.shared.gate);
      add_mat(p, b + "ffn_up_shexp.weight", L.shared.up);
      add_mat(p, b + "ffn_down_shexp.weight", L.shared.down);
    }
  }
}

// Qwen2Model / LlamaModel / Qwen3Model: grouped-query attention, dense MLP; llama's q/k permuted per head.
void plan_gqa_layers(const io::ModelConfig& c, const Weights& w, Plan& p) {
  const bool llama = c.model_type == "llama";
  const int64_t hd = c.head_dim;
  if (const std::vector<float> f = llama3_rope_freqs(c); !f.empty())
    p.push_back({"rope_freqs.weight", {int64_t(f.size())}, DType::F32, [f](int64_t r0, int64_t n, float* out) {
                   DS_ASSERT(r0 == 0 && n == 1);
                   std::copy(f.begin(), f.end(), out);
                 }});
  auto add_qk = [&](const std::string& name, const WeightView& v) {
    if (!llama) return add_mat(p, name, v);
    DS_ASSERT(v.data && v.rows % hd == 0);
    p.push_back({name, {v.cols, v.rows}, DType::F32, permuted_rows(v, hd)});
  };
  auto add_qk_bias = [&](const std::string& name, const WeightView& v) {
    if (!llama) return add_vec(p, name, v);
    DS_ASSERT(v.data && v.rows == 1 && v.cols % hd == 0);
    p.push_back({name, {v.cols}, DType::F32, permuted_vector(v, hd)});
  };
  for (int64_t l = 0; l < c.num_hidden_layers; ++l) {
    const LayerWeights& L = w.layers[size_t(l)];
    const std::string b = "blk." + std::to_string(l) + ".";
    add_vec(p, b + "attn_norm.weight", L.input_layernorm);
    add_qk(b + "attn_q.weight", L.q_proj);
    add_qk(b + "attn_k.weight", L.k_proj);
    add_mat(p, b + "attn_v.weight", L.v_proj);
    if (c.qkv_bias) {
      add_qk_bias(b + "attn_q.bias", L.q_bias);
      add_qk_bias(b + "attn_k.bias", L.k_bias);
      add_vec(p, b + "attn_v.bias", L.v_bias);
    }
    add_mat(p, b + "attn_output.weight", L.o_proj);
    if (c.o_bias) add_vec(p, b + "attn_output.bias", L.o_bias);
    if (c.qk_norm) {
      add_vec(p, b + "attn_q_norm.weight", L.q_norm);
      add_vec(p, b + "attn_k_norm.weight", L.k_norm);
    }
    add_vec(p, b + "ffn_norm.weight", L.post_attention_layernorm);
    add_mat(p, b + "ffn_gate.weight", L.gate_proj);
    add_mat(p, b + "ffn_up.weight", L.up_proj);
    add_mat(p, b + "ffn_down.weight", L.down_proj);
  }
}

}  // namespace

std::vector<GgufTensorPlan> plan_gguf(const io::ModelConfig& c, const Weights& w, const QuantRecipe& r) {
  Plan p;
  add_mat(p, "token_embd.weight", w.embed_tokens);
  add_vec(p, "output_norm.weight", w.norm);
  if (!c.tie_word_embeddings) add_mat(p, "output.weight", w.lm_head);
  if (c.mla())
    plan_mla_layers(c, w, p);
  else
    plan_gqa_layers(c, w, p);
  std::stable_sort(p.begin(), p.end(),
                   [](const GgufTensorPlan& a, const GgufTensorPlan& b) { return loader_less(a.name, b.name); });
  std::vector<std::pair<std::string, std::vector<int64_t>>> shapes;
  for (const GgufTensorPlan& t : p) shapes.emplace_back(t.name, t.ne);
  const std::vector<DType> types = recipe_types(r, shapes, c.n_routed_experts, c.num_hidden_layers, llama_70b_type(c));
  for (size_t i = 0; i < p.size(); ++i) p[i].type = types[i];
  return p;
}

}  // namespace ds::model
