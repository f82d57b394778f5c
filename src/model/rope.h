// SPDX-License-Identifier: MIT
// RoPE tables (plain, YaRN, llama3, linear) for MLA's decoupled rope dims or a grouped-query head, and the attention
// softmax scale (deepseek_spec.md §1.4; transformers' modeling_rope_utils for the dense families).
#pragma once
#include <vector>

#include "io/config.h"

namespace ds::model {

struct RopeTables {
  std::vector<float> inv_freq;  // [rope_dim / 2] fp32: frequencies after scaling
  float attn_factor = 1.0f;     // cos/sin magnitude (YaRN: 1 for every DeepSeek config, 0.1 ln(factor) + 1 for Qwen3)
  float softmax_scale = 1.0f;   // head_dim^-0.5 (* mscale(factor, mscale_all_dim)^2 for DeepSeek YaRN)
};

RopeTables make_rope_tables(const io::ModelConfig& c);

}  // namespace ds::model
