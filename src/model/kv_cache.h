// SPDX-License-Identifier: MIT
// The latent KV cache of one sequence (absorbed MLA): per layer and token, the post-RMSNorm latent c_kv
// (kv_lora_rank values) followed by the post-RoPE k_pe (qk_rope_head_dim values), fp32, in backend memory.
#pragma once
#include <cstdint>
#include <memory>

#include "ops/backend.h"

namespace ds::model {

class KvCache {
 public:
  // n_layers includes the MTP layers; capacity is in tokens.
  KvCache(ops::Backend& be, int64_t n_layers, int64_t capacity, int64_t width)
      : n_layers_(n_layers), capacity_(capacity), width_(width),
        buf_(be.alloc(size_t(n_layers) * size_t(capacity) * size_t(width) * sizeof(float))) {}

  float* layer(int64_t l) { return buf_->f32() + l * capacity_ * width_; }  // [capacity, width]
  int64_t capacity() const { return capacity_; }
  int64_t width() const { return width_; }
  int64_t n_layers() const { return n_layers_; }
  size_t bytes() const { return buf_->size(); }

  int64_t length = 0;      // tokens cached in the main layers
  int64_t mtp_length = 0;  // tokens cached in the MTP layers

 private:
  int64_t n_layers_, capacity_, width_;
  std::unique_ptr<ops::Buffer> buf_;
};

}  // namespace ds::model
