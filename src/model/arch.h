// SPDX-License-Identifier: MIT
// The architecture description: what each layer of a model is made of, decided once from its config. Model runs
// any description through ops::Backend; a new architecture is a description plus the ops its kinds need.
//   DeepSeek V2/V3 (deepseek_v2/v3, kimi_k2): MLA attention; dense MLP in the first layers, MoE after; MTP layers.
//   DeepSeek V3.2 (deepseek_v32): the same with MLA + lightning indexer (sparse attention) in every layer, MTP included.
//   R1-Distill-Qwen (qwen2), R1-Distill-Llama (llama), R1-0528-Qwen3 (qwen3): grouped-query attention, dense MLP.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "io/config.h"

namespace ds::model {

enum class AttentionKind {
  Mla,  // multi-head latent attention: latent cache rows c_kv | k_pe, decoupled interleaved RoPE (mla.cpp)
  // MLA + DeepSeek Sparse Attention (V3.2): a lightning indexer scores every earlier position with its own key (kept
  // after the latent in the cache row) and each query attends only to its index_topk best (mla.cpp, indexer op)
  MlaSparse,
  Gqa,  // grouped-query attention: K and V rows per kv head, optional q/k/v(/o) biases and q/k norms (gqa.cpp)
};
enum class FfnKind {
  Dense,  // SwiGLU MLP
  Moe,    // router, routed experts, shared experts (DeepSeekMoE)
};

struct LayerDesc {
  AttentionKind attention = AttentionKind::Mla;
  FfnKind ffn = FfnKind::Dense;
  bool mla() const { return attention == AttentionKind::Mla || attention == AttentionKind::MlaSparse; }
};

struct ArchDesc {
  std::vector<LayerDesc> layers;  // decoder layers, then MTP layers
  bool router = false;            // some layer routes tokens to experts (sets the precision policy, model.h)
  int64_t kv_width = 0;           // fp32 values per token per layer in the KV cache
  std::string summary() const;    // "24 x (GQA, dense MLP)" / "1 x (MLA, dense MLP), 26 x (MLA, MoE)"
  bool sparse() const;            // some layer is MLA + indexer
};

// The description of a model with config `c` and `n_mtp` MTP layers.
ArchDesc describe_arch(const io::ModelConfig& c, int64_t n_mtp);

}  // namespace ds::model
