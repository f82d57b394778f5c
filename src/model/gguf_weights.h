// SPDX-License-Identifier: MIT
// The tensors of a GGUF model (`deepseek2`, as llama.cpp's converters lay it out) under the Hugging Face names that
// bind_weights asks for: `blk.N.attn_q_a.weight` is model.layers.N.self_attn.q_a_proj.weight, the stacked experts
// `ffn_*_exps` [E, rows, cols] give each expert a view of its slice, and the split MLA layout (attn_k_b [H, r, nope]
// + attn_v_b [H, v, r]) is assembled into kv_b_proj [H * (nope + v), r] for the multi-head form (the one copy made,
// fp32 when the halves are quantised; the older single attn_kv_b maps directly) and also offered as stored, as
// k_b_proj [H * r, nope] and v_b_proj [H * v, r], which the absorbed form reads. Tensors are F32, F16, BF16 or a block
// format of base/quant.h; any other ggml type is an error naming the tensor.
#pragma once
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "io/config.h"
#include "io/gguf.h"
#include "model/weights.h"

namespace ds::model {

class GgufWeights {
 public:
  // Throws ds::Error naming the file and tensor for a missing or unsupported tensor.
  GgufWeights(const io::GgufModel& m, const io::ModelConfig& c);
  TensorLookup lookup() const;
  std::vector<std::string> names() const;
  // The file pages of a tensor the backend copied (no-op for assembled tensors).
  void release(const void* p, size_t n) const;

 private:
  const io::GgufModel& m_;
  std::map<std::string, RawTensor> t_;
  std::vector<std::vector<uint8_t>> owned_;
};

}  // namespace ds::model
