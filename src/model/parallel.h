// SPDX-License-Identifier: MIT
// This rank's share of a model split across processes (model/parallel.cpp): which heads, rows and experts it holds.
#pragma once
#include <memory>
#include <vector>

#include "dist/comm.h"
#include "model/model.h"
#include "ops/backend.h"

namespace ds::model {

struct Model::Par {
  dist::Comm* comm = nullptr;
  int rank = 0, size = 1;
  bool tp = true, ep = true, ep_sum = false;             // heads / rows split (tensor parallel); experts split (expert parallel)
  dist::Range heads;                     // this rank's MLA heads
  bool gqa_split = false;                // grouped-query attention split by kv head (else replicated)
  dist::Range kv_heads;                  // this rank's kv heads (with their query heads), when gqa_split
  std::vector<dist::Range> gqa_cols;     // per rank: its query heads' columns of the attention output [T, H * head_dim]
  std::vector<dist::Range> attn_cols;    // per rank: its heads' columns of the attention output [T, H * v_head_dim]
  std::vector<dist::Range> d;            // per rank: rows of o_proj / down projections (hidden columns)
  std::vector<dist::Range> inter;        // per rank: dense MLP intermediate rows
  std::vector<dist::Range> shared;       // per rank: shared experts' intermediate rows
  std::vector<dist::Range> vocab;        // per rank: lm_head rows
  dist::Range experts;                   // this rank's routed experts
  std::vector<dist::Range> experts_all;  // per rank: its routed experts
  std::vector<std::unique_ptr<ops::Buffer>> bufs;
  std::vector<size_t> floats;
};

}  // namespace ds::model
