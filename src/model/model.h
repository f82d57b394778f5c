// SPDX-License-Identifier: MIT
// The DeepSeek V2/V3 forward pass in plain C++ over ops::Backend: embedding, decoder layers (MLA + dense MLP or
// MoE), final norm and lm_head, and the MTP module. Batches may hold several sequences, each with its own cache.
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include "io/config.h"
#include "model/kv_cache.h"
#include "model/rope.h"
#include "model/weights.h"
#include "ops/backend.h"

namespace ds::model {

// Part of a batch: `n` new tokens of one sequence, appended to `cache` at positions cache->length.. .
struct SeqChunk {
  KvCache* cache = nullptr;
  int64_t n = 0;
  bool all_logits = false;  // logits for every new token (else only the last)
  bool want_hidden = false; // also return final-normed hidden states of the same rows (MTP input)
};

struct Batch {
  std::vector<int32_t> tokens;  // [Σ n] the chunks' tokens, concatenated in chunk order
  std::vector<SeqChunk> seqs;
};

struct ForwardOutput {
  std::vector<float> logits;  // [rows, vocab]: per chunk, n rows (all_logits) or 1 row
  std::vector<float> hidden;  // [rows, hidden] when any chunk wants hidden states
  int64_t rows = 0;
};

// Precision policy. Products that write the residual stream ahead of a router (attention, dense MLP, shared
// experts) always run in fp32: rounding their inputs to bf16 flips near-tied expert choices downstream (measured on
// the tiny-v3 fixture: argmax agreement 83-90% instead of 100%). The routed experts and the lm_head, whose outputs feed
// no discrete decision in the same layer, use `precision` (Fast: bf16 products where the hardware has them).
// Decode is memory-bound, so the fp32 products cost no speed there.
// Tokens per KV block unless a caller chooses (the server's --kv-block-size). Small enough that a partly filled
// last block wastes little and prefixes are shared at a fine grain; large enough that the attention reads long
// contiguous runs.
constexpr int64_t kKvBlockSize = 16;

struct ModelOptions {
  ops::Precision precision = ops::Precision::Fast;
  // Called for each weight the backend copied (Backend::prepare_weight), with the source bytes it no longer needs:
  // the engine releases them from the checkpoint mapping, so the process never holds two copies of the model.
  WeightSourceDone weight_copied;
};

class Model {
 public:
  // The weights' memory (a checkpoint mapping or random buffers) must outlive the model.
  Model(const io::ModelConfig& cfg, Weights weights, ops::Backend& be, ModelOptions opt);
  ~Model();

  const io::ModelConfig& config() const { return cfg_; }
  const Weights& weights() const { return w_; }
  ops::Backend& backend() { return be_; }
  bool has_mtp() const { return w_.n_mtp > 0; }
  int64_t n_cache_layers() const { return cfg_.num_hidden_layers + w_.n_mtp; }
  // A pool of n_blocks KV blocks of block_size tokens for every cache layer (main + MTP), shared by sequences.
  std::shared_ptr<KvPool> new_pool(int64_t n_blocks, int64_t block_size = kKvBlockSize) const;
  // A cache of `capacity` tokens on a private pool just large enough for it (one sequence: CLI, bench, tests).
  std::unique_ptr<KvCache> new_cache(int64_t capacity) const;

  // One forward pass over the batch; advances each chunk's cache length by its n.
  // Throws ds::Error if a chunk would overflow its cache or a token id is out of range.
  void forward(const Batch& batch, ForwardOutput* out);

  // MTP logits for one sequence: rows i = 0..n-1 take the main model's final-normed hidden state h_i [n, hidden]
  // and the next token next_tokens[i]; appended to the cache's MTP layer at positions cache->mtp_length...
  // Output [n, vocab] predicts the token after next.
  void forward_mtp(KvCache* cache, const std::vector<int32_t>& next_tokens, const float* hidden, int64_t n,
                   std::vector<float>* logits);

 private:
  struct Scratch;
  void ensure_scratch(int64_t T, int64_t S);
  void decoder_layer(int64_t l, const Batch& batch, int64_t T, const std::vector<int64_t>& pos0, bool mtp);
  void attention(int64_t l, const Batch& batch, int64_t T, const std::vector<int64_t>& pos0, bool mtp);
  void ffn(int64_t l, int64_t T);
  void embed_tokens(const int32_t* tokens, int64_t T, const WeightView& table, float* out);
  void check_tokens(const int32_t* tokens, int64_t n) const;

  io::ModelConfig cfg_;
  Weights w_;
  ops::Backend& be_;
  ModelOptions opt_;
  RopeTables rope_;
  std::unique_ptr<ops::Buffer> inv_freq_;  // [rope/2] in backend memory
  std::unique_ptr<Scratch> s_;
};

}  // namespace ds::model
