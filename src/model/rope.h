// SPDX-License-Identifier: MIT
// RoPE / YaRN tables for MLA's decoupled rope dims, and the attention softmax scale (deepseek_spec.md §1.4).
#pragma once
#include <vector>

#include "io/config.h"

namespace ds::model {

struct RopeTables {
  std::vector<float> inv_freq;  // [qk_rope_head_dim / 2] fp32: YaRN-corrected frequencies
  float attn_factor = 1.0f;     // cos/sin magnitude (1 for every DeepSeek config: mscale / mscale_all_dim)
  float softmax_scale = 1.0f;   // qk_head_dim^-0.5 * mscale(factor, mscale_all_dim)^2 (YaRN always applied)
};

RopeTables make_rope_tables(const io::ModelConfig& c);

}  // namespace ds::model
