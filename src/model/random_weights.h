// SPDX-License-Identifier: MIT
// Random weights of the right shapes and dtypes for a config, held in memory: lets `deepseek bench` measure real
// model shapes (V2-Lite, V3 with fewer layers) without a download. Values are small and finite; norms are 1.
#pragma once
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "base/huge_pages.h"
#include "model/weights.h"

namespace ds::model {

class RandomWeights {
 public:
  // linear_dtype: BF16, or F8_E4M3 (then every linear weight gets a 128x128 block scale, as DeepSeek's FP8
  // checkpoints have). Embedding, lm_head and norms stay BF16; the router bias is F32.
  RandomWeights(const io::ModelConfig& c, DType linear_dtype, uint64_t seed = 1);

  TensorLookup lookup() const;
  std::vector<std::string> names() const;
  uint64_t bytes() const { return bytes_; }
  // Frees the tensor whose data starts at `data` (a backend copied it): random weights are built at full size, so a
  // backend's copy must not hold them twice. No-op for an unknown pointer.
  void release(const void* data);

 private:
  struct Entry {
    RawTensor t;
    HugePageBuffer mem;  // what decode streams, on huge pages as the cpu backend's own copies are
  };
  void add(const std::string& name, DType dt, std::vector<int64_t> shape, uint64_t seed, int fill);
  std::map<std::string, Entry> tensors_;
  uint64_t bytes_ = 0;
};

}  // namespace ds::model
