// SPDX-License-Identifier: MIT
// The weight table of a model: names as in the Hugging Face checkpoint, with the dtype and shape each tensor must
// have for the config (DeepSeek V2/V3 MLA + MoE layers, or the grouped-query layers of the dense distills). Weights
// stay in their checkpoint dtype (bf16 / fp8 + block scales / GGUF block formats).
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "base/weight.h"
#include "io/config.h"
#include "ops/backend.h"
#include "ops/params.h"

namespace ds::model {

// One expected tensor. `linear` tensors may be FP8 with a `<name>_scale_inv` block-scale tensor beside them.
struct TensorSpec {
  std::string name;
  std::vector<int64_t> shape;  // [rows, cols] or [n]
  bool linear = false;
  bool fp32_only = false;      // e_score_correction_bias
};

struct LayerWeights {
  bool moe = false;
  WeightView input_layernorm, post_attention_layernorm;  // [hidden]
  // MLA
  WeightView q_proj;                // [H*(nope+rope), hidden]   when q_lora_rank == 0
  WeightView q_a_proj;              // [q_lora_rank, hidden]
  WeightView q_a_layernorm;         // [q_lora_rank]
  WeightView q_b_proj;              // [H*(nope+rope), q_lora_rank]
  WeightView kv_a_proj_with_mqa;    // [kv_lora_rank + rope, hidden]
  WeightView kv_a_layernorm;        // [kv_lora_rank]
  WeightView kv_b_proj;             // [H*(nope+v), kv_lora_rank]
  // The same two halves as a GGUF with the split MLA layout stores them, in the file's format; for a checkpoint
  // without them (Hugging Face), made from kv_b_proj at load where its format allows (derive_mla_halves). The
  // absorbed form reads these as plain products (a quantised file's blocks, not kv_b_proj's dequantised fp32 copy;
  // not kv_b_proj read transposed, element by element).
  WeightView k_b_proj;              // [H*kv_lora_rank, nope]: W_UK of each head, transposed
  WeightView v_b_proj;              // [H*v, kv_lora_rank]: W_UV of each head
  WeightView o_proj;                // [hidden, H*v] (grouped-query: [hidden, H*head_dim])
  // The lightning indexer (DeepSeek-V3.2 sparse attention: self_attn.indexer.*)
  WeightView index_wq_b;            // [index_n_heads*index_head_dim, q_lora_rank]
  WeightView index_wk;              // [index_head_dim, hidden]
  WeightView index_k_norm, index_k_norm_bias;  // [index_head_dim] LayerNorm
  WeightView index_weights_proj;    // [index_n_heads, hidden]
  // Grouped-query attention (q_proj above is [H*head_dim, hidden])
  WeightView k_proj, v_proj;        // [Hkv*head_dim, hidden]
  WeightView q_bias, k_bias, v_bias, o_bias;  // [H*head_dim], [Hkv*head_dim] x2, [hidden]; absent without biases
  WeightView q_norm, k_norm;        // [head_dim] (qwen3)
  // Dense MLP (layers < first_k_dense_replace)
  WeightView gate_proj, up_proj;    // [intermediate, hidden]
  WeightView down_proj;             // [hidden, intermediate]
  // MoE
  WeightView gate;                  // [n_routed_experts, hidden]
  WeightView e_score_correction_bias;  // [n_routed_experts] fp32, may be absent (softmax routing)
  std::vector<ops::ExpertWeights> experts;  // [n_routed_experts]
  ops::ExpertWeights shared;        // intermediate n_shared_experts * moe_intermediate_size; absent if 0
  // MTP (layers >= num_hidden_layers)
  WeightView enorm, hnorm;          // [hidden]
  WeightView eh_proj;               // [hidden, 2*hidden]
  WeightView embed_tokens;          // [vocab, hidden], may be absent (then the main embedding is used)
  WeightView shared_head_norm;      // [hidden]
  WeightView shared_head_head;      // [vocab, hidden], may be absent (then lm_head is used)
};

struct Weights {
  WeightView embed_tokens;  // [vocab, hidden]
  WeightView norm;          // [hidden]
  WeightView lm_head;       // [vocab, hidden]
  std::vector<LayerWeights> layers;  // num_hidden_layers + MTP layers that are present
  int64_t n_mtp = 0;        // MTP layers loaded
  uint64_t bytes = 0;       // total bytes of the weights (incl. scales)
  // Tensors made at load rather than read from the source (the MLA halves), owned here. prepare_weights frees
  // those that the backend copied.
  std::vector<std::vector<uint8_t>> derived;
};

// Where tensors come from: a checkpoint (validated against the specs) or random generation (bench).
// `lookup(name)` returns a view of a tensor (data, dtype, shape) or false when absent.
struct RawTensor {
  const void* data = nullptr;
  DType dtype = DType::F32;
  std::vector<int64_t> shape;
};
using TensorLookup = std::function<bool(const std::string& name, RawTensor* out)>;

// Replaces every weight view by the backend's view of it (Backend::prepare_weight): device copies for the cuda
// backend, huge-page copies for a cpu backend that owns its weights, unchanged views otherwise. Absent weights (null
// data) stay absent. `done(data, bytes)`, when set, is called with each source range the backend copied.
using WeightSourceDone = std::function<void(const void* data, size_t bytes)>;
void prepare_weights(Weights* w, ops::Backend& be, const WeightSourceDone& done = nullptr);
// Calls f on every weight slot (empty ones included) with the use the model makes of it.
void for_each_weight(Weights* w, const std::function<void(WeightView&, ops::WeightUse)>& f);
// "Q4_K x14 (0.012 GB), F32 x8 (...)": tensors and bytes per format (shared tensors counted once).
std::string describe_formats(const Weights& w);

// Every tensor the config implies, in checkpoint order (MTP layers included).
std::vector<TensorSpec> weight_specs(const io::ModelConfig& c);

// Binds the weight table. Checks every tensor's presence, dtype and shape (FP8 scale grids included), rejects
// tensors the architecture does not have (`all_names`), and loads the MTP layers only when all their tensors exist.
// `source` names the checkpoint in errors.
Weights bind_weights(const io::ModelConfig& c, const TensorLookup& lookup, const std::vector<std::string>& all_names,
                     const std::string& source);

}  // namespace ds::model
