// SPDX-License-Identifier: MIT
// Model: construction, scratch buffers, the layer loop, the output head and the MTP module.
// Attention lives in mla.cpp, the feed-forward blocks in ffn.cpp.
#include "model/model.h"

#include <algorithm>

#include "base/error.h"
#include "model/parallel.h"
#include "model/scratch.h"

namespace ds::model {

Model::Model(const io::ModelConfig& cfg, Weights weights, ops::Backend& be, ModelOptions opt)
    : cfg_(cfg), w_(std::move(weights)), arch_(describe_arch(cfg, w_.n_mtp)), be_(be), opt_(opt),
      rope_(make_rope_tables(cfg)), s_(std::make_unique<Scratch>()) {
  // Biases in fp32 backend memory, converted from the checkpoint's bytes before prepare_weights may release them.
  biases_.resize(w_.layers.size());
  for (size_t l = 0; l < w_.layers.size(); ++l) {
    const LayerWeights& lw = w_.layers[l];
    auto f32 = [&](const WeightView& v) -> const float* {
      if (!v.data) return nullptr;
      std::vector<float> h(size_t(v.cols));
      v.row_f32(0, h.data());
      bias_bufs_.push_back(be_.alloc(h.size() * sizeof(float)));
      be_.upload(bias_bufs_.back()->data(), h.data(), h.size() * sizeof(float));
      return bias_bufs_.back()->f32();
    };
    biases_[l] = {f32(lw.q_bias), f32(lw.k_bias), f32(lw.v_bias), f32(lw.o_bias)};
  }
  if (opt_.comm && opt_.comm->size() > 1) {
    par_ = std::make_unique<Par>();
    par_->comm = opt_.comm;
    par_->rank = opt_.comm->rank();
    par_->size = opt_.comm->size();
    for (auto [v, flag] : {std::pair{opt_.tp, "--tp"}, std::pair{opt_.ep, "--ep"}})
      DS_CHECK(v == 0 || v == 1 || v == par_->size, flag, " ", v, " with ", par_->size, " processes: only 1 (replicated) "
               "or ", par_->size, " (split over every rank) is supported");
    par_->tp = opt_.tp != 1;
    par_->ep = opt_.ep != 1;
    par_->ep_sum = opt_.ep_sum;
    shard_weights();  // this rank's slices only (model/parallel.cpp)
  }
  prepare_weights(&w_, be_, opt_.weight_copied);  // the backend's own copies (cuda, cpu owning its weights), or as is
  if (opt_.indexer_fp8) {
    const int64_t d = cfg_.index_head_dim;
    DS_CHECK(arch_.sparse(), "--indexer-numerics fp8 needs a model with sparse attention (DeepSeek-V3.2)");
    DS_CHECK(d > 0 && (d & (d - 1)) == 0, "--indexer-numerics fp8: index_head_dim ", d,
             " must be a power of two (Hadamard transform)");
    std::vector<float> h(size_t(d * d));
    for (int64_t i = 0; i < d; ++i)
      for (int64_t j = 0; j < d; ++j) h[size_t(i * d + j)] = __builtin_popcountll(uint64_t(i & j)) % 2 ? -1.0f : 1.0f;
    hadamard_ = be_.alloc(h.size() * sizeof(float));
    be_.upload(hadamard_->data(), h.data(), h.size() * sizeof(float));
    hadamard_w_.data = hadamard_->data();
    hadamard_w_.dtype = DType::F32;
    hadamard_w_.rows = hadamard_w_.cols = d;
  }
  inv_freq_ = be_.alloc(rope_.inv_freq.size() * sizeof(float));
  be_.upload(inv_freq_->data(), rope_.inv_freq.data(), rope_.inv_freq.size() * sizeof(float));
}

Model::~Model() = default;

ops::Precision Model::precision_for(const WeightView& w) const {
  if (!arch_.router) return opt_.precision;  // no expert choice downstream to protect
  return opt_.q8_everywhere && is_block_dtype(w.dtype) ? opt_.precision : ops::Precision::F32;
}

std::shared_ptr<KvPool> Model::new_pool(int64_t n_blocks, int64_t block_size) const {
  return std::make_shared<KvPool>(be_, n_blocks, block_size, n_cache_layers(), arch_.kv_width, opt_.kv_dtype);
}

ops::KvRows Model::cache_rows(const Batch& batch, size_t j, int64_t l) {
  return batch.seqs[j].cache->pool().layer(l, static_cast<const int32_t*>(s_->btab->data()) + s_->tab_off[j]);
}

std::unique_ptr<KvCache> Model::new_cache(int64_t capacity) const {
  DS_CHECK(capacity > 0, "context size must be positive, got ", capacity);
  return std::make_unique<KvCache>(new_pool((capacity + kKvBlockSize - 1) / kKvBlockSize, kKvBlockSize), capacity);
}

void Model::ensure_scratch(int64_t T, int64_t S) { s_->ensure(be_, cfg_, T, S); }

void Model::check_tokens(const int32_t* tokens, int64_t n) const {
  for (int64_t i = 0; i < n; ++i)
    DS_CHECK(tokens[i] >= 0 && tokens[i] < cfg_.vocab_size, "token id ", tokens[i], " at index ", i,
             " is out of range [0, ", cfg_.vocab_size, ")");
}

void Model::embed_tokens(const int32_t* tokens, int64_t T, const WeightView& table, float* out) {
  be_.upload(s_->tok->data(), tokens, size_t(T) * sizeof(int32_t));
  ops::EmbedParams p;
  p.table = table;
  p.ids = static_cast<const int32_t*>(s_->tok->data());
  p.out = out;
  p.ldo = cfg_.hidden_size;
  p.M = T;
  be_.embed(p);
}

void Model::decoder_layer(int64_t l, const Batch& batch, int64_t T, const std::vector<int64_t>& pos0) {
  const LayerWeights& w = w_.layers[l];
  const int64_t D = cfg_.hidden_size;
  be_.rms_norm({s_->x->f32(), D, w.input_layernorm, s_->xn->f32(), D, T, D, float(cfg_.rms_norm_eps)});
  if (arch_.layers[size_t(l)].mla()) attention_mla(l, batch, T, pos0);  // x += o_proj(attn(xn))
  else attention_gqa(l, batch, T, pos0);
  be_.rms_norm({s_->x->f32(), D, w.post_attention_layernorm, s_->xn->f32(), D, T, D, float(cfg_.rms_norm_eps)});
  ffn(l, T);                          // x += ffn(xn)
}

namespace {
// Positions of every token in the batch: chunk j's tokens continue from pos0[j].
std::vector<int32_t> positions(const Batch& b, const std::vector<int64_t>& pos0) {
  std::vector<int32_t> pos;
  for (size_t j = 0; j < b.seqs.size(); ++j)
    for (int64_t i = 0; i < b.seqs[j].n; ++i) pos.push_back(int32_t(pos0[j] + i));
  return pos;
}
}  // namespace

std::vector<int64_t> Model::begin_step(const Batch& batch, bool mtp) {
  const int64_t T = int64_t(batch.tokens.size());
  const char* what = mtp ? "MTP " : "";
  int64_t sum = 0;
  std::vector<int64_t> pos0;
  for (const SeqChunk& c : batch.seqs) {
    DS_CHECK(c.cache && c.n > 0, what, "batch chunk without a cache or tokens");
    const int64_t len = mtp ? c.cache->mtp_length : c.cache->length;
    DS_CHECK(len + c.n <= c.cache->capacity(), mtp ? "MTP context is full: " : "context is full: ", len, " + ", c.n,
             " tokens exceed the context size ", c.cache->capacity());
    pos0.push_back(len);
    sum += c.n;
  }
  DS_CHECK(sum == T && T > 0, what, "batch has ", T, " tokens but its chunks cover ", sum);
  check_tokens(batch.tokens.data(), T);
  for (const SeqChunk& c : batch.seqs) c.cache->prepare_write(mtp ? c.cache->mtp_length : c.cache->length, c.n, mtp);
  return pos0;
}

void Model::forward(const Batch& batch, ForwardOutput* out) {
  const std::vector<int64_t> pos0 = begin_step(batch, false);
  if (lead_) send_step(false, batch, pos0, nullptr);  // the other ranks run the same step (model/step.cpp)
  run_forward(batch, pos0, out);
  for (const SeqChunk& c : batch.seqs) c.cache->length += c.n;
}

void Model::run_forward(const Batch& batch, const std::vector<int64_t>& pos0, ForwardOutput* out) {
  const int64_t T = int64_t(batch.tokens.size()), D = cfg_.hidden_size;
  int64_t max_s = 0;
  for (size_t j = 0; j < batch.seqs.size(); ++j) max_s = std::max(max_s, pos0[j] + batch.seqs[j].n);
  ensure_scratch(T, max_s);
  s_->upload_tables(be_, batch);
  const auto pos = positions(batch, pos0);
  be_.upload(s_->pos->data(), pos.data(), pos.size() * sizeof(int32_t));

  embed_tokens(batch.tokens.data(), T, w_.embed_tokens, s_->x->f32());
  for (int64_t l = 0; l < cfg_.num_hidden_layers; ++l) decoder_layer(l, batch, T, pos0);
  be_.rms_norm({s_->x->f32(), D, w_.norm, s_->xn->f32(), D, T, D, float(cfg_.rms_norm_eps)});

  outputs(batch, s_->xn->f32(), s_->xn->f32(), w_.lm_head, out);
}

void Model::outputs(const Batch& batch, const float* xn, const float* h, const WeightView& head, ForwardOutput* out) {
  const int64_t D = cfg_.hidden_size, V = cfg_.vocab_size;
  // Gather the rows that need logits (all of a chunk, or its last token) into a compact [rows, D] block.
  int64_t rows = 0, off = 0, hrows = 0;
  for (const SeqChunk& c : batch.seqs) {
    const int64_t first = c.all_logits ? off : off + c.n - 1, n = c.all_logits ? c.n : 1;
    be_.copy({xn + first * D, D, s_->sel->f32() + rows * D, D, n, D});
    rows += n;
    off += c.n;
    if (c.want_hidden) hrows += c.n;
  }
  float* logits = s_->logits_for(be_, rows, V);
  ops::MatmulParams mm;
  mm.x = s_->sel->f32(); mm.ldx = D; mm.w = head; mm.y = logits; mm.ldy = V;
  mm.M = rows; mm.N = V; mm.K = D; mm.precision = opt_.precision;
  if (!par_ || !par_->tp) {
    be_.matmul(mm);
  } else {  // this rank's vocabulary rows, then every rank's gathered into [rows, V]
    mm.N = par_->vocab[size_t(par_->rank)].size();
    mm.y = par_buf(2, size_t(rows * std::max<int64_t>(mm.N, 1)));
    mm.ldy = mm.N;
    if (mm.N > 0) be_.matmul(mm);
    gather_cols(mm.y, rows, par_->vocab, logits, V);
  }
  out->rows = rows;
  out->logits.resize(size_t(rows) * size_t(V));
  be_.download(out->logits.data(), logits, out->logits.size() * sizeof(float));
  out->hidden.resize(size_t(hrows) * size_t(D));
  off = 0;
  hrows = 0;
  for (const SeqChunk& c : batch.seqs) {
    if (c.want_hidden)
      be_.download(out->hidden.data() + hrows * D, h + off * D, size_t(c.n) * size_t(D) * sizeof(float));
    hrows += c.want_hidden ? c.n : 0;
    off += c.n;
  }
}

void Model::forward_mtp(KvCache* cache, const std::vector<int32_t>& next_tokens, const float* hidden, int64_t n,
                        std::vector<float>* logits_out) {
  DS_CHECK(int64_t(next_tokens.size()) == n && n > 0, "MTP input: ", next_tokens.size(), " tokens for ", n, " rows");
  Batch b;
  b.tokens = next_tokens;
  b.seqs.push_back({cache, n, true, false});
  ForwardOutput out;
  forward_mtp(b, hidden, &out);
  logits_out->swap(out.logits);
}

void Model::forward_mtp(const Batch& batch, const float* hidden, ForwardOutput* out) {
  DS_CHECK(has_mtp(), "this checkpoint has no MTP layer (num_nextn_predict_layers = ", cfg_.num_nextn_predict_layers,
           ", no model.layers.", cfg_.num_hidden_layers, ".* tensors)");
  const std::vector<int64_t> pos0 = begin_step(batch, true);
  if (lead_) send_step(true, batch, pos0, hidden);
  run_mtp(batch, pos0, hidden, out);
  for (const SeqChunk& c : batch.seqs) c.cache->mtp_length += c.n;
}

void Model::run_mtp(const Batch& batch, const std::vector<int64_t>& pos0, const float* hidden, ForwardOutput* out) {
  const int64_t T = int64_t(batch.tokens.size()), l = cfg_.num_hidden_layers, D = cfg_.hidden_size;
  int64_t max_s = 0;
  for (size_t j = 0; j < batch.seqs.size(); ++j) max_s = std::max(max_s, pos0[j] + batch.seqs[j].n);
  const LayerWeights& w = w_.layers[size_t(l)];
  ensure_scratch(T, max_s);
  s_->upload_tables(be_, batch);
  const auto pos = positions(batch, pos0);
  be_.upload(s_->pos->data(), pos.data(), pos.size() * sizeof(int32_t));

  // x = eh_proj([enorm(embed(t_{i+1})) ; hnorm(h_i)]): embedding first, as the checkpoints are laid out.
  float* cat = s_->cat->f32();
  embed_tokens(batch.tokens.data(), T, w.embed_tokens.data ? w.embed_tokens : w_.embed_tokens, s_->xn->f32());
  be_.rms_norm({s_->xn->f32(), D, w.enorm, cat, 2 * D, T, D, float(cfg_.rms_norm_eps)});
  be_.upload(s_->sel->data(), hidden, size_t(T) * size_t(D) * sizeof(float));
  be_.rms_norm({s_->sel->f32(), D, w.hnorm, cat + D, 2 * D, T, D, float(cfg_.rms_norm_eps)});
  ops::MatmulParams mm;
  mm.x = cat; mm.ldx = 2 * D; mm.w = w.eh_proj; mm.y = s_->x->f32(); mm.ldy = D;
  mm.M = T; mm.N = D; mm.K = 2 * D; mm.precision = ops::Precision::F32;  // feeds a router: see ModelOptions
  be_.matmul(mm);
  decoder_layer(l, batch, T, pos0);
  be_.rms_norm({s_->x->f32(), D, w.shared_head_norm, s_->xn->f32(), D, T, D, float(cfg_.rms_norm_eps)});
  outputs(batch, s_->xn->f32(), s_->x->f32(), w.shared_head_head.data ? w.shared_head_head : w_.lm_head, out);
}

}  // namespace ds::model
