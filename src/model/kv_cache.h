// SPDX-License-Identifier: MIT
// The latent KV cache of one sequence (absorbed MLA): per layer and token, the post-RMSNorm latent c_kv
// (kv_lora_rank values) followed by the post-RoPE k_pe (qk_rope_head_dim values), fp32, in backend memory.
#pragma once
#include <cstdint>
#include <cstring>
#include <algorithm>
#include <memory>
#include <stdexcept>

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

  // Copies the first `n` token rows of every layer from `src` (same shape) into this cache and sets length = n
  // (mtp_length = 0). Used by the server's prefix reuse. Host-memory backends only (cpu, ref): the rows are copied
  // with memcpy.
  void copy_prefix_from(KvCache& src, int64_t n) {
    if (&src == this || n <= 0) {
      length = std::max<int64_t>(0, std::min(n, length));
      mtp_length = 0;
      return;
    }
    if (src.n_layers_ != n_layers_ || src.width_ != width_ || n > capacity_ || n > src.capacity_ || n > src.length)
      throw std::invalid_argument("KvCache::copy_prefix_from: shape mismatch or too many rows");
    for (int64_t l = 0; l < n_layers_; ++l)
      std::memcpy(layer(l), src.layer(l), size_t(n) * size_t(width_) * sizeof(float));
    length = n;
    mtp_length = 0;
  }

  int64_t length = 0;      // tokens cached in the main layers
  int64_t mtp_length = 0;  // tokens cached in the MTP layers

 private:
  int64_t n_layers_, capacity_, width_;
  std::unique_ptr<ops::Buffer> buf_;
};

}  // namespace ds::model
