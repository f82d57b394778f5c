// SPDX-License-Identifier: MIT
// Weight table: one visitor walks every tensor the config implies, used both to list specs and to bind views.
#include "model/weights.h"

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <map>
#include <set>

#include "base/error.h"

namespace ds::model {

namespace {

using Visit = std::function<void(const TensorSpec&, WeightView*)>;

std::string layer_prefix(int64_t l) { return "model.layers." + std::to_string(l) + "."; }

void visit_expert(const std::string& p, int64_t inter, int64_t hidden, ops::ExpertWeights* e, const Visit& f) {
  f({p + "gate_proj.weight", {inter, hidden}, true, false}, &e->gate);
  f({p + "up_proj.weight", {inter, hidden}, true, false}, &e->up);
  f({p + "down_proj.weight", {hidden, inter}, true, false}, &e->down);
}

void visit_layer(const io::ModelConfig& c, int64_t l, LayerWeights* w, const Visit& f) {
  const std::string p = layer_prefix(l);
  const int64_t D = c.hidden_size, H = c.num_attention_heads;
  if (l >= c.num_hidden_layers) {  // MTP module: its own input projection and head around a full decoder layer
    f({p + "enorm.weight", {D}}, &w->enorm);
    f({p + "hnorm.weight", {D}}, &w->hnorm);
    f({p + "eh_proj.weight", {D, 2 * D}, true}, &w->eh_proj);
    f({p + "shared_head.norm.weight", {D}}, &w->shared_head_norm);
  }
  f({p + "input_layernorm.weight", {D}}, &w->input_layernorm);
  f({p + "post_attention_layernorm.weight", {D}}, &w->post_attention_layernorm);
  const std::string a = p + "self_attn.";
  if (!c.mla()) {
    const int64_t hd = c.head_dim, kvw = c.num_key_value_heads * hd;
    f({a + "q_proj.weight", {H * hd, D}, true}, &w->q_proj);
    f({a + "k_proj.weight", {kvw, D}, true}, &w->k_proj);
    f({a + "v_proj.weight", {kvw, D}, true}, &w->v_proj);
    f({a + "o_proj.weight", {D, H * hd}, true}, &w->o_proj);
    if (c.qkv_bias) {
      f({a + "q_proj.bias", {H * hd}}, &w->q_bias);
      f({a + "k_proj.bias", {kvw}}, &w->k_bias);
      f({a + "v_proj.bias", {kvw}}, &w->v_bias);
    }
    if (c.o_bias) f({a + "o_proj.bias", {D}}, &w->o_bias);
    if (c.qk_norm) {
      f({a + "q_norm.weight", {hd}}, &w->q_norm);
      f({a + "k_norm.weight", {hd}}, &w->k_norm);
    }
  } else if (c.q_lora_rank > 0) {
    f({a + "q_a_proj.weight", {c.q_lora_rank, D}, true}, &w->q_a_proj);
    f({a + "q_a_layernorm.weight", {c.q_lora_rank}}, &w->q_a_layernorm);
    f({a + "q_b_proj.weight", {H * c.qk_head_dim(), c.q_lora_rank}, true}, &w->q_b_proj);
  } else {
    f({a + "q_proj.weight", {H * c.qk_head_dim(), D}, true}, &w->q_proj);
  }
  if (c.mla()) {
    f({a + "kv_a_proj_with_mqa.weight", {c.kv_lora_rank + c.qk_rope_head_dim, D}, true}, &w->kv_a_proj_with_mqa);
    f({a + "kv_a_layernorm.weight", {c.kv_lora_rank}}, &w->kv_a_layernorm);
    f({a + "kv_b_proj.weight", {H * (c.qk_nope_head_dim + c.v_head_dim), c.kv_lora_rank}, true}, &w->kv_b_proj);
    f({a + "o_proj.weight", {D, H * c.v_head_dim}, true}, &w->o_proj);
  }
  if (c.indexer()) {
    const std::string x = a + "indexer.";
    const int64_t d = c.index_head_dim;
    f({x + "wq_b.weight", {c.index_n_heads * d, c.q_lora_rank}, true}, &w->index_wq_b);
    f({x + "wk.weight", {d, D}, true}, &w->index_wk);
    f({x + "k_norm.weight", {d}}, &w->index_k_norm);
    f({x + "k_norm.bias", {d}}, &w->index_k_norm_bias);
    f({x + "weights_proj.weight", {c.index_n_heads, D}, true}, &w->index_weights_proj);
  }
  const std::string m = p + "mlp.";
  w->moe = c.is_moe_layer(l);
  if (!w->moe) {
    f({m + "gate_proj.weight", {c.intermediate_size, D}, true}, &w->gate_proj);
    f({m + "up_proj.weight", {c.intermediate_size, D}, true}, &w->up_proj);
    f({m + "down_proj.weight", {D, c.intermediate_size}, true}, &w->down_proj);
    return;
  }
  f({m + "gate.weight", {c.n_routed_experts, D}}, &w->gate);
  if (c.topk_method == io::TopkMethod::NoauxTc)
    f({m + "gate.e_score_correction_bias", {c.n_routed_experts}, false, true}, &w->e_score_correction_bias);
  w->experts.resize(size_t(c.n_routed_experts));
  for (int64_t e = 0; e < c.n_routed_experts; ++e)
    visit_expert(m + "experts." + std::to_string(e) + ".", c.moe_intermediate_size, D, &w->experts[e], f);
  if (c.n_shared_experts > 0)
    visit_expert(m + "shared_experts.", c.n_shared_experts * c.moe_intermediate_size, D, &w->shared, f);
}

void visit_model(const io::ModelConfig& c, Weights* w, int64_t n_layers, const Visit& f) {
  f({"model.embed_tokens.weight", {c.vocab_size, c.hidden_size}}, &w->embed_tokens);
  w->layers.resize(size_t(n_layers));
  for (int64_t l = 0; l < n_layers; ++l) visit_layer(c, l, &w->layers[l], f);
  f({"model.norm.weight", {c.hidden_size}}, &w->norm);
  if (!c.tie_word_embeddings) f({"lm_head.weight", {c.vocab_size, c.hidden_size}, true}, &w->lm_head);
}

std::string shape_str(const std::vector<int64_t>& s) {
  std::string r = "[";
  for (size_t i = 0; i < s.size(); ++i) r += (i ? ", " : "") + std::to_string(s[i]);
  return r + "]";
}

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

bool is_float_dtype(DType t) { return t == DType::F32 || t == DType::BF16 || t == DType::F16; }

}  // namespace

std::vector<TensorSpec> weight_specs(const io::ModelConfig& c) {
  std::vector<TensorSpec> specs;
  Weights w;
  visit_model(c, &w, c.num_layers_total(), [&](const TensorSpec& s, WeightView*) { specs.push_back(s); });
  // Optional MTP duplicates of the embedding and head, as published checkpoints carry them.
  for (int64_t l = c.num_hidden_layers; l < c.num_layers_total(); ++l) {
    specs.push_back({layer_prefix(l) + "embed_tokens.weight", {c.vocab_size, c.hidden_size}});
    specs.push_back({layer_prefix(l) + "shared_head.head.weight", {c.vocab_size, c.hidden_size}, true});
  }
  return specs;
}

namespace {

// kv_b_proj's per-head halves for the absorbed form, when the checkpoint does not store them: k_b_proj [H*r, nope]
// (W_UK of each head, transposed) and v_b_proj [H*v, r] (W_UV of each head), element for element in kv_b_proj's own
// format. Then both absorbed products are plain row-major products that the backend may lay out for its matmul
// kernels, instead of W_UK read transposed, element by element. Costs one more copy of kv_b_proj (V3: 16.8 MB per
// layer, ~0.15% of the model). An FP8 half gets a scale grid of its own: every block of the half must take its
// elements from one block of kv_b_proj (true when each head's rows start on a block edge, as in every DeepSeek
// checkpoint); where that does not hold, or for ggml block formats (whose blocks cannot be transposed), no halves
// are made and the absorbed form reads kv_b_proj as before.
void derive_mla_halves(const io::ModelConfig& c, LayerWeights* L, Weights* w) {
  const WeightView& kvb = L->kv_b_proj;
  if (!kvb.data || L->k_b_proj.data || kvb.layout != WeightLayout::RowMajor || is_block_dtype(kvb.dtype)) return;
  const int64_t H = c.num_attention_heads, nope = c.qk_nope_head_dim, dv = c.v_head_dim, r = c.kv_lora_rank;
  const int64_t hs = nope + dv, es = dtype_size(kvb.dtype);
  if (kvb.rows != H * hs || kvb.cols != r || kvb.row0 != 0) return;
  const bool sc = kvb.scale != nullptr;
  const int64_t br = kvb.block_rows, bc = kvb.block_cols;
  // One half: element (i, j) of an [n_rows, n_cols] half is kv_b_proj's (src_row(i, j), src_col(i, j)); its scale
  // grid has blocks of hb_rows x hb_cols. Returns false (nothing kept) when a block of the half would need two scales.
  auto make = [&](int64_t n_rows, int64_t n_cols, int64_t hb_rows, int64_t hb_cols, auto src, WeightView* out) {
    std::vector<uint8_t> data(size_t(n_rows * n_cols * es)), grid;
    const int64_t g_rows = sc ? ceil_div(n_rows, hb_rows) : 0, g_cols = sc ? ceil_div(n_cols, hb_cols) : 0;
    std::vector<int64_t> from(size_t(g_rows * g_cols), -1);  // the kv_b_proj scale each block of the half takes
    const uint8_t* in = static_cast<const uint8_t*>(kvb.data);
    for (int64_t i = 0; i < n_rows; ++i)
      for (int64_t j = 0; j < n_cols; ++j) {
        const auto [sr, scol] = src(i, j);
        std::memcpy(data.data() + size_t((i * n_cols + j) * es), in + size_t((sr * r + scol) * es), size_t(es));
        if (!sc) continue;
        int64_t& f = from[size_t((i / hb_rows) * g_cols + j / hb_cols)];
        const int64_t s = (sr / br) * kvb.scale_cols + scol / bc;
        if (f >= 0 && f != s) return false;
        f = s;
      }
    WeightView v;
    v.dtype = kvb.dtype;
    v.rows = n_rows;
    v.cols = n_cols;
    if (sc) {
      grid.resize(from.size() * sizeof(float));
      float* g = reinterpret_cast<float*>(grid.data());
      for (size_t b = 0; b < from.size(); ++b) g[b] = from[b] >= 0 ? kvb.scale[from[b]] : 0.0f;
      v.scale_cols = g_cols;
      v.block_rows = int32_t(hb_rows);
      v.block_cols = int32_t(hb_cols);
      w->bytes += grid.size();
    }
    w->bytes += data.size();
    w->derived.push_back(std::move(data));
    v.data = w->derived.back().data();
    if (sc) {
      w->derived.push_back(std::move(grid));
      v.scale = reinterpret_cast<const float*>(w->derived.back().data());
    }
    *out = v;
    return true;
  };
  WeightView kb, vb;
  // k_b_proj row h*r + j, column k = kv_b_proj row h*(nope+dv) + k, column j (its blocks transposed: bc x br).
  const bool ok_k = make(H * r, nope, bc, br, [&](int64_t i, int64_t k) {
    return std::pair<int64_t, int64_t>{(i / r) * hs + k, i % r};
  }, &kb);
  const size_t kept = w->derived.size();
  // v_b_proj row h*dv + i = kv_b_proj row h*(nope+dv) + nope + i.
  const bool ok_v = ok_k && make(H * dv, r, br, bc, [&](int64_t i, int64_t j) {
    return std::pair<int64_t, int64_t>{(i / dv) * hs + nope + i % dv, j};
  }, &vb);
  if (!ok_v) {
    if (ok_k) {  // the K half alone is of no use: the absorbed form reads both halves or neither
      w->bytes -= kb.bytes() + (sc ? uint64_t(ceil_div(kb.rows, kb.block_rows) * kb.scale_cols) * 4 : 0);
      w->derived.resize(kept - (sc ? 2 : 1));
    }
    return;
  }
  L->k_b_proj = kb;
  L->v_b_proj = vb;
}

}  // namespace

Weights bind_weights(const io::ModelConfig& c, const TensorLookup& lookup, const std::vector<std::string>& all_names,
                     const std::string& source) {
  std::set<std::string> used;
  Weights w;

  auto bind = [&](const TensorSpec& s, WeightView* slot) {
    RawTensor t;
    DS_CHECK(lookup(s.name, &t), source, ": missing tensor '", s.name, "' (expected shape ", shape_str(s.shape), ")");
    used.insert(s.name);
    DS_CHECK(t.shape == s.shape, source, ": tensor '", s.name, "' has shape ", shape_str(t.shape), ", expected ",
             shape_str(s.shape), " from config.json");
    WeightView v;
    v.data = t.data;
    v.dtype = t.dtype;
    v.rows = s.shape.size() == 2 ? s.shape[0] : 1;
    v.cols = s.shape.back();
    DS_CHECK(!is_block_dtype(t.dtype) || s.shape.size() == 2, source, ": tensor '", s.name, "' is ",
             dtype_name(t.dtype), ": block formats are for matrices, this is a vector (expected F32, F16 or BF16)");
    const std::string scale_name = s.name + "_scale_inv";
    RawTensor sc;
    const bool has_scale = s.linear && lookup(scale_name, &sc);
    if (s.fp32_only) {
      DS_CHECK(t.dtype == DType::F32, source, ": tensor '", s.name, "' must be F32, got ", dtype_name(t.dtype));
    } else if (has_scale) {
      used.insert(scale_name);
      DS_CHECK(t.dtype == DType::F8_E4M3, source, ": tensor '", s.name, "' has a block scale '", scale_name,
               "' but dtype ", dtype_name(t.dtype), " (expected F8_E4M3)");
      const std::vector<int64_t> want = {ceil_div(v.rows, c.weight_block_rows), ceil_div(v.cols, c.weight_block_cols)};
      DS_CHECK(sc.dtype == DType::F32, source, ": scale tensor '", scale_name, "' must be F32, got ",
               dtype_name(sc.dtype));
      DS_CHECK(sc.shape == want, source, ": scale tensor '", scale_name, "' has shape ", shape_str(sc.shape),
               ", expected ", shape_str(want), " for a ", shape_str(s.shape), " weight in ", c.weight_block_rows, "x",
               c.weight_block_cols, " blocks");
      v.scale = static_cast<const float*>(sc.data);
      v.scale_cols = want[1];
      v.block_rows = int32_t(c.weight_block_rows);
      v.block_cols = int32_t(c.weight_block_cols);
      w.bytes += uint64_t(want[0] * want[1]) * 4;
    } else if (!is_block_dtype(t.dtype)) {
      DS_CHECK(is_float_dtype(t.dtype), source, ": tensor '", s.name, "' has dtype ", dtype_name(t.dtype),
               t.dtype == DType::F8_E4M3 ? " without its block scale '" + scale_name + "'" : std::string(),
               " (expected BF16, F16 or F32", s.linear ? ", or F8_E4M3 with a _scale_inv" : "", ")");
    }
    w.bytes += uint64_t(v.bytes());  // after the dtype checks: sizing an unsupported dtype would throw unnamed
    *slot = v;
  };

  visit_model(c, &w, c.num_hidden_layers, bind);
  if (c.tie_word_embeddings) w.lm_head = w.embed_tokens;

  // Optional per-head halves of kv_b_proj (GGUF's attn_k_b / attn_v_b, gguf_weights.h): both or neither.
  if (c.mla())
    for (int64_t l = 0; l < c.num_hidden_layers; ++l) {
      const std::string a = layer_prefix(l) + "self_attn.";
      RawTensor t;
      if (!lookup(a + "k_b_proj.weight", &t)) continue;
      const int64_t H = c.num_attention_heads, r = c.kv_lora_rank;
      bind({a + "k_b_proj.weight", {H * r, c.qk_nope_head_dim}, true}, &w.layers[size_t(l)].k_b_proj);
      bind({a + "v_b_proj.weight", {H * c.v_head_dim, r}, true}, &w.layers[size_t(l)].v_b_proj);
    }

  // MTP layers: optional as a whole (many conversions drop them), complete when present.
  std::set<std::string> names(all_names.begin(), all_names.end());
  for (int64_t l = c.num_hidden_layers; l < c.num_layers_total(); ++l) {
    const std::string p = layer_prefix(l);
    auto it = names.lower_bound(p);
    if (it == names.end() || it->compare(0, p.size(), p) != 0) break;
    w.layers.emplace_back();
    visit_layer(c, l, &w.layers.back(), bind);
    LayerWeights& m = w.layers.back();
    RawTensor t;
    if (lookup(p + "embed_tokens.weight", &t)) bind({p + "embed_tokens.weight", {c.vocab_size, c.hidden_size}}, &m.embed_tokens);
    if (lookup(p + "shared_head.head.weight", &t))
      bind({p + "shared_head.head.weight", {c.vocab_size, c.hidden_size}, true}, &m.shared_head_head);
    ++w.n_mtp;
  }

  if (c.mla())
    for (LayerWeights& L : w.layers) derive_mla_halves(c, &L, &w);

  for (const auto& n : all_names) {
    if (used.count(n)) continue;
    if (n.size() >= 19 && n.compare(n.size() - 19, 19, "rotary_emb.inv_freq") == 0) continue;  // old exports
    fail(source, ": unexpected tensor '", n, "' (not part of a ", c.model_type, " model with this config.json)");
  }
  return w;
}

void for_each_weight(Weights* w, const std::function<void(WeightView&, ops::WeightUse)>& f) {
  const ops::WeightUse general = ops::WeightUse::General, mm = ops::WeightUse::MatmulOnly;
  auto expert = [&](ops::ExpertWeights& e) {
    f(e.gate, mm);
    f(e.up, mm);
    f(e.down, mm);
  };
  f(w->embed_tokens, general);  // rows gathered
  f(w->norm, general);
  f(w->lm_head, mm);  // tied to embed_tokens: the same host bytes (a backend may keep one copy per use)
  for (LayerWeights& l : w->layers) {
    // kv_b_proj is sliced per head and may be read transposed (absorbed decode without the halves): General.
    // k_b_proj / v_b_proj are multiplied by slices of one head's rows: MatmulRows where those start at multiples of
    // 16 rows ([H*r, nope] and [H*v, r]: r = v_b_proj's cols), else General. Norms, biases: General.
    for (WeightView* v : {&l.input_layernorm, &l.post_attention_layernorm, &l.q_a_layernorm, &l.kv_a_layernorm,
                          &l.kv_b_proj, &l.e_score_correction_bias, &l.enorm, &l.hnorm, &l.embed_tokens,
                          &l.shared_head_norm, &l.q_bias, &l.k_bias, &l.v_bias, &l.o_bias, &l.q_norm, &l.k_norm,
                          &l.index_k_norm, &l.index_k_norm_bias})
      f(*v, general);
    const int64_t r = l.v_b_proj.cols, heads = r > 0 ? l.k_b_proj.rows / r : 0;
    const bool rows16 =
        r % 16 == 0 && heads > 0 && l.v_b_proj.rows % heads == 0 && (l.v_b_proj.rows / heads) % 16 == 0;
    f(l.k_b_proj, rows16 ? ops::WeightUse::MatmulRows : general);
    f(l.v_b_proj, rows16 ? ops::WeightUse::MatmulRows : general);
    for (WeightView* v : {&l.q_proj, &l.q_a_proj, &l.q_b_proj, &l.kv_a_proj_with_mqa, &l.o_proj, &l.gate_proj,
                          &l.up_proj, &l.down_proj, &l.gate, &l.eh_proj, &l.shared_head_head, &l.k_proj, &l.v_proj,
                          &l.index_wq_b, &l.index_wk, &l.index_weights_proj})
      f(*v, mm);
    for (ops::ExpertWeights& e : l.experts) expert(e);
    expert(l.shared);
  }
}

void prepare_weights(Weights* w, ops::Backend& be, const WeightSourceDone& done) {
  for_each_weight(w, [&](WeightView& v, ops::WeightUse use) {
    if (!v.data) return;
    const WeightView src = v;
    v = be.prepare_weight(v, use);
    if (done && v.data != src.data) done(src.data, size_t(src.bytes()));
  });
  // Tensors made at load that no view reads any more (the backend took copies) are freed.
  std::vector<const uint8_t*> in_use;
  for_each_weight(w, [&](WeightView& v, ops::WeightUse) {
    for (const void* p : {v.data, static_cast<const void*>(v.scale)})
      if (p) in_use.push_back(static_cast<const uint8_t*>(p));
  });
  for (std::vector<uint8_t>& d : w->derived) {
    const uint8_t *lo = d.data(), *hi = d.data() + d.size();
    const bool used = std::any_of(in_use.begin(), in_use.end(), [&](const uint8_t* p) { return p >= lo && p < hi; });
    if (!used) std::vector<uint8_t>().swap(d);
  }
}

std::string describe_formats(const Weights& w) {
  std::map<std::string, std::pair<int, double>> by;  // format -> (tensors, bytes)
  std::set<const void*> seen;
  for_each_weight(const_cast<Weights*>(&w), [&](WeightView& v, ops::WeightUse) {
    if (!v.data || !seen.insert(v.data).second) return;
    auto& e = by[std::string(dtype_name(v.dtype)) + (v.scale ? "+scale" : "")];
    ++e.first;
    e.second += double(v.bytes());
  });
  std::string r;
  char buf[96];
  for (const auto& [name, e] : by) {
    std::snprintf(buf, sizeof buf, "%s%s x%d (%.3f GB)", r.empty() ? "" : ", ", name.c_str(), e.first, e.second / 1e9);
    r += buf;
  }
  return r;
}

}  // namespace ds::model
