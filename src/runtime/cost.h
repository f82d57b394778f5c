// SPDX-License-Identifier: MIT
// What a forward pass costs: bytes a decode step reads (weights actually used + KV cache) and prefill FLOPs,
// from the config and the bound weights' real dtypes. Used by `deepseek bench` to state % of hardware limits.
#pragma once
#include <cstdint>
#include <utility>
#include <vector>

#include "io/config.h"
#include "model/weights.h"

namespace ds::rt {

struct DecodeBytes {
  double attention = 0;  // q/kv_a/kv_b/o projections + attention norms, all layers
  double dense = 0;      // dense MLP layers
  double shared = 0;     // shared experts
  double router = 0;     // router gate weights (+ bias)
  double routed = 0;     // the routed experts selected (expected distinct experts for batch > 1)
  double lm_head = 0;    // lm_head + final norm
  double kv = 0;         // KV cache rows read (in their stored format), per sequence, summed over the batch
  double total() const { return attention + dense + shared + router + routed + lm_head + kv; }
};

// Bytes read by one decode step of `batch` sequences each with `ctx` cached tokens (main layers only, no MTP), the
// cache rows stored as `kv_dtype` (base/kv_rows.h).
DecodeBytes decode_bytes(const io::ModelConfig& c, const model::Weights& w, int64_t ctx, int64_t batch,
                         DType kv_dtype = DType::F32);

// The weight bytes one decode step of one sequence reads, as ranges (the bound views' own layout): every weight a
// token uses, with the first k routed experts of each MoE layer standing for the k it selects. Reading them plainly
// between decode steps measures the bandwidth the step could have had at that moment (`bench --paired`).
std::vector<std::pair<const void*, size_t>> decode_read_set(const io::ModelConfig& c, const model::Weights& w);

// FLOPs of prefilling n tokens from an empty cache (linear layers with the selected experts, attention in the
// multi-head form, logits of the last token only).
double prefill_flops(const io::ModelConfig& c, int64_t n);

}  // namespace ds::rt
