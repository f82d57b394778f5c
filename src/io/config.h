// SPDX-License-Identifier: MIT
// config.json of a checkpoint, names as in the file: DeepSeek V2/V3 (model_type deepseek_v2 / deepseek_v3 / kimi_k2:
// MLA attention, MoE; deepseek_v32: the same plus DeepSeek Sparse Attention's lightning indexer in every layer) and the dense families of DeepSeek's distilled models (qwen2: R1-Distill-Qwen; llama:
// R1-Distill-Llama; qwen3: R1-0528-Qwen3: grouped-query attention, dense SwiGLU MLP). Defaults are the ones the
// reference (HF transformers / DeepSeek remote code) applies when a field is absent.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "io/json_util.h"

namespace ds::io {

enum class ScoringFunc { Softmax, Sigmoid };
enum class TopkMethod { Greedy, GroupLimitedGreedy, NoauxTc };

// rope_scaling.type / rope_type: none (null, absent, "default"), yarn (DeepSeek, Qwen3), llama3 (Llama-3.1), linear.
enum class RopeType { None, Yarn, Llama3, Linear };

struct RopeScaling {
  RopeType type = RopeType::None;
  bool yarn() const { return type == RopeType::Yarn; }
  double factor = 1.0;
  int64_t original_max_position_embeddings = 4096;
  double beta_fast = 32.0;
  double beta_slow = 1.0;
  double mscale = 1.0;
  double mscale_all_dim = 0.0;
  double attention_factor = 0.0;  // 0: derived from mscale / mscale_all_dim as HF does
  // "attn_factor" (R1-0528-Qwen3-8B's config: 0.878 = 1 / (0.1 ln 4 + 1)): multiplies the YaRN magnitude, as vLLM
  // reads it (transformers and llama.cpp ignore the key). 0: absent.
  double attn_factor = 0.0;
  double low_freq_factor = 1.0, high_freq_factor = 4.0;  // llama3
  // Per-frequency divisors of the plain frequencies (a GGUF's `rope_freqs.weight`: llama.cpp's form of llama3
  // scaling, which its converter bakes into a tensor); empty: none.
  std::vector<float> freq_factors;
};

struct ModelConfig {
  std::string model_type;                  // deepseek_v2 | deepseek_v3 | deepseek_v32 | kimi_k2 | qwen2 | llama | qwen3
  std::vector<std::string> architectures;  // informational
  int64_t vocab_size = 0;
  int64_t hidden_size = 0;
  int64_t intermediate_size = 0;
  int64_t moe_intermediate_size = 0;
  int64_t num_hidden_layers = 0;
  int64_t num_attention_heads = 0;
  int64_t num_key_value_heads = 0;  // grouped-query attention (unused by MLA)
  int64_t head_dim = 0;             // grouped-query attention: q/k/v width per head (0 for MLA)
  bool qkv_bias = false;            // q/k/v projections carry biases (qwen2; llama/qwen3 attention_bias)
  bool o_bias = false;              // o_proj carries a bias (llama/qwen3 attention_bias)
  bool qk_norm = false;             // RMSNorm over each q/k head before RoPE (qwen3)
  // Grouped-query models as stored: RoPE pairs dims (i, i + head_dim/2) ("rotate_half", HF checkpoints), or
  // adjacent dims (llama.cpp's Llama GGUF files, whose converter permutes q/k rows for its pairing).
  bool rope_interleaved = false;
  int64_t q_lora_rank = 0;          // 0 (null in the file) = direct q_proj
  int64_t kv_lora_rank = 0;
  int64_t qk_nope_head_dim = 0;
  int64_t qk_rope_head_dim = 0;
  int64_t v_head_dim = 0;
  int64_t n_routed_experts = 0;     // 0 (null) = dense model
  int64_t n_shared_experts = 0;
  int64_t num_experts_per_tok = 0;
  int64_t n_group = 1;
  int64_t topk_group = 1;
  int64_t first_k_dense_replace = 0;
  int64_t moe_layer_freq = 1;
  double routed_scaling_factor = 1.0;
  bool norm_topk_prob = false;
  ScoringFunc scoring_func = ScoringFunc::Softmax;
  TopkMethod topk_method = TopkMethod::Greedy;
  int64_t num_nextn_predict_layers = 0;
  double rms_norm_eps = 1e-6;
  double rope_theta = 10000.0;
  RopeScaling rope_scaling;
  int64_t max_position_embeddings = 0;
  std::string hidden_act = "silu";
  bool tie_word_embeddings = false;
  bool attention_bias = false;
  std::vector<int64_t> eos_token_ids;  // eos_token_id may be an int or a list
  int64_t bos_token_id = -1;
  // quantization_config (fp8 block quantisation)
  bool fp8 = false;
  int64_t weight_block_rows = 128, weight_block_cols = 128;
  bool scale_ue8m0 = false;  // scale_fmt == "ue8m0" (V3.1/V3.2)
  // DeepSeek Sparse Attention (deepseek_v32): the lightning indexer's heads and head width, and how many earlier
  // positions each query attends to. index_topk 0: no indexer (every other model).
  int64_t index_n_heads = 0, index_head_dim = 0, index_topk = 0;

  // Derived
  bool mla() const { return kv_lora_rank > 0; }  // DeepSeek MLA; else grouped-query attention
  bool indexer() const { return index_topk > 0; }  // MLA + lightning indexer (DeepSeek-V3.2)
  int64_t qk_head_dim() const { return qk_nope_head_dim + qk_rope_head_dim; }
  // fp32 values one token keeps in the KV cache per layer: the latent c_kv | k_pe (MLA; with the indexer, its key
  // follows: c_kv | k_pe | k_index), or K and V of every kv head.
  int64_t kv_row_width() const {
    return mla() ? kv_lora_rank + qk_rope_head_dim + (indexer() ? index_head_dim : 0) : 2 * num_key_value_heads * head_dim;
  }
  // Width RoPE rotates per head: MLA's decoupled rope dims, or the whole head.
  int64_t rope_dim() const { return mla() ? qk_rope_head_dim : head_dim; }
  bool is_moe_layer(int64_t layer) const;  // MTP layers (index >= num_hidden_layers) follow the same rule
  int64_t num_layers_total() const { return num_hidden_layers + num_nextn_predict_layers; }
};

// Parses and validates (missing/mistyped fields, zero or inconsistent dimensions, n_group not dividing experts, ...).
// `source` names the file in error messages.
ModelConfig parse_config(const Json& j, const std::string& source);
ModelConfig load_config(const std::string& path);
// The config of a GGUF model (architecture `deepseek2`, `qwen2`, `llama` or `qwen3` metadata, as llama.cpp's converters
// write it), validated as a config.json is. MTP layers in the file are not bound (num_nextn_predict_layers = 0).
class GgufModel;
ModelConfig config_from_gguf(const GgufModel& m);
// One line per field, for `deepseek info`.
std::string describe(const ModelConfig& c);

}  // namespace ds::io
