// SPDX-License-Identifier: MIT
// Session: one sequence's state (its latent KV cache, paged on a private pool, and token history) over an Engine.
// Not thread-safe; one session is driven by one thread at a time.
#pragma once
#include <cstdint>
#include <memory>
#include <vector>

#include "runtime/engine.h"

namespace ds::rt {

class Session {
 public:
  // ctx <= 0: the engine's default context size.
  explicit Session(Engine& engine, int64_t ctx = 0, int64_t max_chunk = 512);

  // Appends `tokens` (prefill, split into chunks of at most max_chunk) and returns the logits of the last position
  // ([vocab]) or of every new position ([n, vocab]) when all_logits. `hidden`, when given, receives the final-normed
  // hidden states of every new position ([n, hidden_size]).
  std::vector<float> prefill(const std::vector<int32_t>& tokens, bool all_logits = false,
                             std::vector<float>* hidden = nullptr);
  // Appends one token and returns the next-token logits [vocab].
  std::vector<float> decode(int32_t token);
  void reset();
  // Forgets the positions >= n (a rejected speculative tail): the cache keeps its blocks, the MTP rows past n go too.
  void rollback(int64_t n);

  int64_t length() const { return cache_->length; }
  int64_t capacity() const { return cache_->capacity(); }
  const std::vector<int32_t>& history() const { return history_; }
  model::KvCache& cache() { return *cache_; }
  Engine& engine() { return engine_; }

 private:
  Engine& engine_;
  std::unique_ptr<model::KvCache> cache_;
  int64_t max_chunk_;
  std::vector<int32_t> history_;
};

}  // namespace ds::rt
