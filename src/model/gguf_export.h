// SPDX-License-Identifier: MIT
// What `deepseek quantize` writes: the GGUF tensors of a model as convert_hf_to_gguf.py names and shapes them
// (llama.cpp's `deepseek2` layout for DeepSeek V2/V3, `qwen2` / `llama` / `qwen3` for the dense distills), the fp32
// rows of each computed from the bound weights, and the ggml type of each under a llama.cpp file type ("recipe":
// llama-quant.cpp's llama_tensor_get_type).
//
// Tensors (ggml dims, ne[0] the contiguous one; HF weight [rows, cols] is ne [cols, rows]):
//   token_embd, output_norm, output (absent when the embeddings are tied)
//   deepseek2: blk.N.attn_norm, attn_q_a / attn_q_a_norm / attn_q_b (q_lora) or attn_q, attn_kv_a_mqa,
//   attn_kv_a_norm, attn_k_b [nope, kv_lora, H] (W_UK of each head transposed), attn_v_b [kv_lora, v, H] (W_UV of
//   each head) -- the split MLA layout current llama.cpp requires whenever key_length_mla is written (it loads
//   attn_kv_b only from files without it) --, attn_output, ffn_norm, then ffn_gate / ffn_up / ffn_down (dense
//   layers) or ffn_gate_inp, exp_probs_b.bias (noaux_tc routing), ffn_{gate,up,down}_exps [cols, rows, E] (the
//   experts stacked) and ffn_{gate,up,down}_shexp (the shared experts).
//   qwen2 / llama / qwen3: rope_freqs [head_dim / 2] (llama with llama3 RoPE scaling: LlamaModel's per-frequency
//   divisors), blk.N.attn_norm, attn_q / attn_k / attn_v (.weight, and .bias when the model has q/k/v biases),
//   attn_output (+ .bias), attn_q_norm / attn_k_norm (qwen3), ffn_norm, ffn_gate / ffn_up / ffn_down. Llama's q and
//   k rows (and biases) are permuted per head as LlamaModel.permute does, from HF's [first half | second half] RoPE
//   pairing to llama.cpp's adjacent pairs.
// MTP layers (index >= num_hidden_layers) are not written, as llama.cpp's converter skips them (its deepseek2 graph
// does not run them); the file's block_count is num_hidden_layers.
// Order: llama.cpp's loader order (the tensors without a layer first, then by layer; by name within each), which
// is also the order llama-quantize writes and the one its per-layer counters follow.
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "base/dtype.h"
#include "io/config.h"
#include "model/weights.h"

namespace ds::model {

// One `--type`: llama.cpp's file type (general.file_type), its default tensor type, and a one-line description.
struct QuantRecipe {
  const char* name;  // "Q4_K_M"
  uint32_t ftype;    // llama_ftype
  DType base;        // the type most matrices get
  const char* help;
};
// F32, F16, BF16, Q8_0, Q6_K, Q5_K_M, Q5_K_S, Q4_K_M, Q4_K_S, Q5_0, Q4_0.
const std::vector<QuantRecipe>& quant_recipes();
// Case-insensitive lookup; null when unknown.
const QuantRecipe* find_recipe(const std::string& name);

// The ggml type of each tensor (name, ggml dims), given in loader order, under `r` (llama-quantize without an
// importance matrix, on the F32 file of the same model; F32 / F16 / BF16 as convert_hf_to_gguf.py --outtype):
//  * vectors, *_norm.weight and ffn_gate_inp stay F32 (so does exp_probs_b.bias, a vector);
//  * F32 / F16 / BF16: every other tensor in that type;
//  * block types: output.weight (token_embd too when tied) -> Q6_K (Q8_0 for Q8_0 files, and when ne[0] is not a
//    multiple of the base type's block); ffn_down*: Q4_K_M and Q5_K_M -> Q6_K on llama.cpp's use_more_bits layers
//    (i < n/8, i >= 7n/8, (i - n/8) % 3 == 2; layer from the name), Q4_K_S -> Q5_K for i < n/8; with exactly 8
//    experts attn_output -> Q5_K (Q4_K_S, Q4_K_M) and attn_v / attn_k / attn_kv_b -> Q8_0; Q4_K_M / Q5_K_M attn_v
//    (attn_kv_b) -> Q6_K on use_more_bits, Q4_K_S the first 4 -> Q5_K (attn_k_b / attn_v_b are neither: llama.cpp
//    leaves them at the base type); in llama.cpp's 70B models attn_v that would be Q4_K is Q5_K;
//  * then the shape fallback, when ne[0] is not a multiple of the type's block: Q4_K -> Q5_0, Q5_K -> Q5_1,
//    Q6_K -> Q8_0, and F16 when ne[0] is not a multiple of 32 either.
// `n_expert`: expert_count (0 dense); `n_layer`: block_count; `type_70b`: llama.cpp's model type is LLM_TYPE_70B
// (llama_70b_type below).
std::vector<DType> recipe_types(const QuantRecipe& r,
                                const std::vector<std::pair<std::string, std::vector<int64_t>>>& tensors,
                                int64_t n_expert, int64_t n_layer, bool type_70b = false);

// llama.cpp's LLM_TYPE_70B, the one model type its quantisation rules look at: llama with 80 layers and fewer kv
// heads than heads (Llama-2/3 70B, R1-Distill-Llama-70B), qwen2 with 80 layers (Qwen2/2.5-72B).
bool llama_70b_type(const io::ModelConfig& c);

// rope_freqs.weight of a llama model with llama3 RoPE scaling (LlamaModel.generate_extra_tensors): per frequency
// 1 (high), factor (low) or 1 / ((1 - s) / factor + s) between, computed in float32 one operation at a time as
// torch does, so that the values equal the converter's bit for bit. Empty for other models.
std::vector<float> llama3_rope_freqs(const io::ModelConfig& c);

// One tensor to write.
struct GgufTensorPlan {
  std::string name;
  std::vector<int64_t> ne;  // ggml order
  DType type = DType::F32;
  // fp32 values of rows [r0, r0 + n) of the tensor seen as [rows(), cols()] (row-major), exactly as the checkpoint
  // holds them (FP8 block scales applied). Safe to call from several threads at once.
  std::function<void(int64_t r0, int64_t n, float* out)> rows_f32;

  int64_t cols() const { return ne[0]; }
  int64_t rows() const {
    int64_t n = 1;
    for (size_t i = 1; i < ne.size(); ++i) n *= ne[i];
    return n;
  }
};

// The tensors of `w` (bound for `c`; MTP layers ignored) in loader order, typed by `r`: the deepseek2 layout for MLA
// models, the grouped-query one of qwen2 / llama / qwen3 otherwise.
std::vector<GgufTensorPlan> plan_gguf(const io::ModelConfig& c, const Weights& w, const QuantRecipe& r);

}  // namespace ds::model
