// SPDX-License-Identifier: MIT
// The causal LM the runtime, scheduler and server use: one forward pass in plain C++ over ops::Backend for any
// architecture description (model/arch.h): embedding, decoder layers (attention kind + FFN kind per layer), final
// norm and lm_head, and DeepSeek's MTP module. Batches may hold several sequences, each with its own paged cache.
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include "dist/comm.h"
#include "io/config.h"
#include "model/arch.h"
#include "model/kv_cache.h"
#include "model/rope.h"
#include "model/weights.h"
#include "ops/backend.h"

namespace ds::model {

// How a chunk's attention runs (deepseek_spec.md §1.6). Both forms compute the same function; they differ in cost
// and in the last bits of the result.
enum class AttentionForm {
  MultiHead,  // K and V of every cached row expanded through kv_b_proj, then per-head attention: prompt chunks
  Absorbed,   // W_UK folded into the query, W_UV into the output; reads only the latent cache: decode, verify chunks
};
// The longest chunk appended to a non-empty cache that still runs the absorbed form (a speculative verify chunk is
// 1 + at most 4 drafts; the MTP layer's catch-up after one is as long).
constexpr int64_t kMaxAbsorbedChunk = 8;

// Part of a batch: `n` new tokens of one sequence, appended to `cache` at positions cache->length.. .
struct SeqChunk {
  KvCache* cache = nullptr;
  int64_t n = 0;
  bool all_logits = false;  // logits for every new token (else only the last)
  bool want_hidden = false; // also return the hidden states of every new token (MTP input)
};

struct Batch {
  std::vector<int32_t> tokens;  // [Σ n] the chunks' tokens, concatenated in chunk order
  std::vector<SeqChunk> seqs;
};

struct ForwardOutput {
  std::vector<float> logits;  // [rows, vocab]: per chunk, n rows (all_logits) or 1 row
  // [Σ n of the chunks with want_hidden, hidden_size], in chunk order: the main model's final-normed hidden states
  // (forward), or the MTP layer's output before its shared_head norm (forward_mtp: what a chained draft feeds back).
  std::vector<float> hidden;
  int64_t rows = 0;
};

// Precision policy. In a model with a router (MoE layers), products that write the residual stream ahead of it
// (attention, dense MLP, shared experts) always run in fp32: rounding their inputs to bf16 flips near-tied expert choices downstream (measured on
// the tiny-v3 fixture: argmax agreement 83-90% instead of 100%). The routed experts and the lm_head, whose outputs feed
// no discrete decision in the same layer, use `precision` (Fast: bf16 products where the hardware has them).
// Decode is memory-bound, so the fp32 products cost no speed there. GGUF block weights (Q8_0, Q4_K, ...) keep the
// same rule (with Fast, their routed experts and lm_head take int8 activation blocks); `q8_everywhere` (CLI
// --precision q8) gives every product on block weights int8 activation blocks, as llama.cpp computes them: faster
// (fp32 products on quarter-byte weights are compute-bound on a small CPU), but measured on the GGUF fixtures the
// rounded router inputs move logits (row cosine to the fp32 reference down to 0.75 on tiny-v3, 0.994 on
// tiny-gguf-v2l) where the default stays >= 0.999.
// Tokens per KV block unless a caller chooses (the server's --kv-block-size). Small enough that a partly filled
// last block wastes little and prefixes are shared at a fine grain; large enough that the attention reads long
// contiguous runs.
constexpr int64_t kKvBlockSize = 16;

struct ModelOptions {
  ops::Precision precision = ops::Precision::Fast;
  bool q8_everywhere = false;  // with Fast: block weights ahead of routers take int8 activations too (see above)
  // How KV cache rows are stored (base/kv_rows.h): F32 (exact), BF16 or F8_E4M3 (fewer bytes per decode step).
  DType kv_dtype = DType::F32;
  // Called for each weight the backend copied (Backend::prepare_weight), with the source bytes it no longer needs:
  // the engine releases them from the checkpoint mapping, so the process never holds two copies of the model.
  WeightSourceDone weight_copied;
  // The processes this model is split across (model/parallel.cpp, docs/SCALING.md), or null / size 1: one process,
  // with every result bit-identical to a build without parallelism. With N ranks each holds and computes 1/N of the
  // attention heads, of the dense and shared MLPs' and lm_head's rows, and of the routed experts; the latent cache is
  // replicated. Every rank must run the same forward calls on the same batch.
  dist::Comm* comm = nullptr;
  // Ranks the attention heads, dense / shared MLPs and lm_head are split over (tensor parallel), and ranks the routed
  // experts are split over (expert parallel): 1 (replicated: every rank computes the whole part) or comm's size;
  // 0 = comm's size. Other sizes (replicated groups) are refused.
  int tp = 0, ep = 0;
  // How the routed experts' outputs are joined across ranks: false (default) gathers every (token, slot) row and adds
  // them in the one-process order (bitwise the one-process result); true sums each rank's partial output over the
  // ranks (fewer bytes, N·T·D instead of T·k·D, but re-associated: ~1e-6 on the logits).
  bool ep_sum = false;
  // DeepSeek-V3.2's indexer as DeepSeek deploys it: q and k rotated by a Hadamard transform and rounded through e4m3
  // (ue8m0 scales per 128 values) before the scores (CLI --indexer-numerics fp8). Off: the fp32 model.
  bool indexer_fp8 = false;
};

class Model {
 public:
  // The weights' memory (a checkpoint mapping or random buffers) must outlive the model.
  Model(const io::ModelConfig& cfg, Weights weights, ops::Backend& be, ModelOptions opt);
  ~Model();

  const io::ModelConfig& config() const { return cfg_; }
  const ArchDesc& arch() const { return arch_; }
  // This process's rank and the number of ranks the model is split across (1: one process).
  int rank() const;
  int ranks() const;
  const Weights& weights() const { return w_; }
  ops::Backend& backend() { return be_; }
  DType kv_dtype() const { return opt_.kv_dtype; }
  bool has_mtp() const { return w_.n_mtp > 0; }
  int64_t n_cache_layers() const { return cfg_.num_hidden_layers + w_.n_mtp; }
  // A pool of n_blocks KV blocks of block_size tokens for every cache layer (main + MTP), shared by sequences; rows
  // of arch().kv_width values (MLA latent rows, or K and V of every kv head) stored as ModelOptions::kv_dtype.
  std::shared_ptr<KvPool> new_pool(int64_t n_blocks, int64_t block_size = kKvBlockSize) const;
  // A cache of `capacity` tokens on a private pool just large enough for it (one sequence: CLI, bench, tests).
  std::unique_ptr<KvCache> new_cache(int64_t capacity) const;

  // The attention form of a chunk of n new tokens after `cached` rows: the model's rule, which callers that must
  // reproduce a computation bit for bit (prefix reuse) ask instead of re-deriving it. A single token, or a short
  // chunk (<= kMaxAbsorbedChunk) appended to a non-empty cache, is absorbed: a verify chunk reads the latent cache
  // once, and each of its rows gets the bits it would get decoded alone.
  static AttentionForm attention_form(int64_t cached, int64_t n) {
    return n == 1 || (cached > 0 && n <= kMaxAbsorbedChunk) ? AttentionForm::Absorbed : AttentionForm::MultiHead;
  }

  // One forward pass over the batch; advances each chunk's cache length by its n.
  // Throws ds::Error if a chunk would overflow its cache or a token id is out of range.
  void forward(const Batch& batch, ForwardOutput* out);

  // The MTP layer over a batch: chunk j's rows i (positions cache->mtp_length..) take a hidden state h_i (rows of
  // `hidden` [Σ n, hidden_size], in chunk order: the main model's final-normed state, or the MTP layer's own output
  // for a chained draft) and the token after it, batch.tokens (t_{i+1}); their logits predict t_{i+2}. Advances each
  // chunk's cache->mtp_length by its n.
  void forward_mtp(const Batch& batch, const float* hidden, ForwardOutput* out);
  // Serving across processes (model/step.cpp). Rank 0 owns the scheduler and the pool's block tables: after
  // lead(pool), each forward / forward_mtp over sequences of that pool first sends the step (chunks' positions, block
  // tables and tokens, the MTP input rows, and the block copies and writes the pool made since the last step) to the
  // other ranks, whose follow() runs the same computation on a mirror of the pool until rank 0 calls end_lead().
  void lead(KvPool& pool);
  void end_lead();
  void follow();
  // The positions DeepSeek-V3.2's indexer chose, for tests and `deepseek logits --index-out`: while set, every
  // MLA + indexer layer appends one record per batch chunk (its rows' lists, ascending, -1 padded to index_topk;
  // where the whole context fits in index_topk the indexer is skipped and the record lists every earlier position).
  struct IndexRecord {
    int64_t layer = 0, pos0 = 0, rows = 0;
    std::vector<int32_t> sel;  // [rows, index_topk]
  };
  void record_index(std::vector<IndexRecord>* log) { index_log_ = log; }
  // One sequence, logits of every row [n, vocab].
  void forward_mtp(KvCache* cache, const std::vector<int32_t>& next_tokens, const float* hidden, int64_t n,
                   std::vector<float>* logits);

 private:
  struct Scratch;
  void ensure_scratch(int64_t T, int64_t S);
  // A step in three parts: checks and cache writability (returns each chunk's first position), the computation
  // (which the ranks following a leader run on their mirrored pool), and the cache lengths' advance.
  std::vector<int64_t> begin_step(const Batch& batch, bool mtp);
  void run_forward(const Batch& batch, const std::vector<int64_t>& pos0, ForwardOutput* out);
  void run_mtp(const Batch& batch, const std::vector<int64_t>& pos0, const float* hidden, ForwardOutput* out);
  // Leading (model/step.cpp): the step as bytes to every other rank.
  void send_step(bool mtp, const Batch& batch, const std::vector<int64_t>& pos0, const float* hidden);
  KvPool* lead_ = nullptr;
  std::vector<IndexRecord>* index_log_ = nullptr;
  // DeepSeek-V3.2: chunk j's selections (or null: every earlier position) for layer l, into sel [n, index_topk].
  const int32_t* index_select(int64_t l, const ops::KvRows& rows, const float* iq, const float* iw, int64_t n,
                              int64_t p0, int32_t* sel);
  void decoder_layer(int64_t l, const Batch& batch, int64_t T, const std::vector<int64_t>& pos0);
  // x += o_proj(attention(xn)) for layer l, by its attention kind (mla.cpp, gqa.cpp).
  void attention_mla(int64_t l, const Batch& batch, int64_t T, const std::vector<int64_t>& pos0);
  void attention_gqa(int64_t l, const Batch& batch, int64_t T, const std::vector<int64_t>& pos0);
  // Layer l's rows of batch chunk j's cache (its block table as uploaded for this step).
  ops::KvRows cache_rows(const Batch& batch, size_t j, int64_t l);
  // The final rows: logits of what each chunk asks for through `head` (lm_head or the MTP shared head) from the
  // normed rows `xn`, and the hidden rows `h` of the chunks that want them.
  void outputs(const Batch& batch, const float* xn, const float* h, const WeightView& head, ForwardOutput* out);
  void ffn(int64_t l, int64_t T);
  void embed_tokens(const int32_t* tokens, int64_t T, const WeightView& table, float* out);
  void check_tokens(const int32_t* tokens, int64_t n) const;

  // Parallelism (model/parallel.cpp). par_ is null in one process.
  struct Par;
  std::unique_ptr<Par> par_;
  void shard_weights();
  // dst [T, Σ parts] (row stride lddst) := every rank's `part` [T, parts[r].size()] (compact, in backend memory)
  // placed at columns parts[r].begin.
  void gather_cols(const float* part, int64_t T, const std::vector<dist::Range>& parts, float* dst, int64_t lddst);
  // x [T, D] += y, where this rank computed y's columns parts[rank] as `y_part` [T, that many] (compact).
  void add_gathered(const float* y_part, int64_t T, const std::vector<dist::Range>& parts);
  float* par_buf(int i, size_t floats);  // grow-only backend buffers for the above
  // The routed experts' y += Σ_j w·expert(x) with each rank computing the pairs of the experts it holds: their
  // output rows are gathered from every rank and added in the one-process order.
  void moe_parallel(const ops::MoeParams& p);

  io::ModelConfig cfg_;
  Weights w_;
  ArchDesc arch_;
  ops::Backend& be_;
  ModelOptions opt_;
  // The precision of a product ahead of a router on weight w: fp32, or with q8_everywhere `precision` for block
  // weights (see above).
  ops::Precision precision_for(const WeightView& w) const;
  RopeTables rope_;
  std::unique_ptr<ops::Buffer> inv_freq_;  // [rope/2] in backend memory
  std::unique_ptr<ops::Buffer> hadamard_;  // indexer_fp8: [d, d] F32 Sylvester matrix of +-1
  WeightView hadamard_w_;
  // Biases of grouped-query layers in fp32 backend memory (added with ops::add): per layer q, k, v, o (null: none).
  struct Biases { const float *q = nullptr, *k = nullptr, *v = nullptr, *o = nullptr; };
  std::vector<Biases> biases_;
  std::vector<std::unique_ptr<ops::Buffer>> bias_bufs_;
  std::unique_ptr<Scratch> s_;
};

}  // namespace ds::model
