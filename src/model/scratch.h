// SPDX-License-Identifier: MIT
// Activation buffers of one forward pass, in backend memory, grown on demand (T tokens; S cached positions for the
// multi-head form's buffers).
#pragma once
#include <algorithm>
#include <memory>
#include <vector>

#include "io/config.h"
#include "model/model.h"
#include "ops/backend.h"

namespace ds::model {

struct Model::Scratch {
  int64_t T = 0, S = 0;
  std::unique_ptr<ops::Buffer> x, xn, sel, cat;  // [T, D] residual, normed, gathered rows; [T, 2D] MTP input
  std::unique_ptr<ops::Buffer> qa, q, kva;       // [T, q_lora], [T, H*qk_head_dim], [T, kv_width] new cache rows
  std::unique_ptr<ops::Buffer> attn;             // [T, H*v_head_dim]
  // (grouped-query layers: q [T, H*head_dim], attn [T, H*head_dim])
  std::unique_ptr<ops::Buffer> qlat, olat;       // [T, H*(kv_lora + rope)], [T, H*kv_lora] (absorbed form)
  std::unique_ptr<ops::Buffer> kvb;              // [S, H*(nope + v)] (multi-head form)
  std::unique_ptr<ops::Buffer> kvg;              // [S, kv width] cache rows gathered from blocks (multi-head form)
  std::unique_ptr<ops::Buffer> iq, iw, isel;     // indexer: [T, heads*head_dim] queries, [T, heads] weights,
                                                 // [T, index_topk] int32 chosen positions
  std::unique_ptr<ops::Buffer> iq8, ik8;         // FP8 indexer numerics: rotated q [T, heads*head_dim], k [T, head_dim]
  std::unique_ptr<ops::Buffer> btab;             // [n_tab] int32: the batch's block tables, concatenated
  int64_t n_tab = 0;
  std::vector<int64_t> tab_off;                  // per batch chunk: offset of its block table in btab
  std::unique_ptr<ops::Buffer> g, u;             // [T, max(intermediate, shared intermediate)]
  std::unique_ptr<ops::Buffer> rlogits, rw, ids; // [T, E] router logits, [T, k] weights, [T, k] int32 ids
  std::unique_ptr<ops::Buffer> moe_out, zeros;   // [T, D]
  std::unique_ptr<ops::Buffer> tok, pos;         // [T] int32

  void ensure(ops::Backend& be, const io::ModelConfig& c, int64_t t, int64_t s) {
    const int64_t H = c.num_attention_heads, D = c.hidden_size, r = c.kv_lora_rank, dr = c.qk_rope_head_dim;
    if (t > T) {
      T = std::max(t, T * 2);
      auto f = [&](int64_t n) { return be.alloc(size_t(T) * size_t(std::max<int64_t>(n, 1)) * sizeof(float)); };
      x = f(D); xn = f(D); sel = f(D); cat = f(2 * D);
      qa = f(c.q_lora_rank); q = f(H * std::max(c.qk_head_dim(), c.head_dim)); kva = f(c.kv_row_width());
      attn = f(H * std::max(c.v_head_dim, c.head_dim)); qlat = f(H * (r + dr)); olat = f(H * r);
      const int64_t inter = std::max(c.intermediate_size, c.n_shared_experts * c.moe_intermediate_size);
      g = f(inter); u = f(inter);
      rlogits = f(c.n_routed_experts); rw = f(c.num_experts_per_tok); ids = f(c.num_experts_per_tok);
      moe_out = f(D); zeros = f(D);
      tok = f(1); pos = f(1);
      iq = f(c.index_n_heads * c.index_head_dim); iw = f(c.index_n_heads); isel = f(c.index_topk);
      iq8 = f(c.index_n_heads * c.index_head_dim); ik8 = f(c.index_head_dim);
    }
    (void)s;
  }

  // The multi-head form's expanded K / V and gathered rows for s cached positions, grown on demand. Only prompt
  // chunks need them: decode never allocates them (at V3's 128 heads they take 128 KiB per cached token).
  void ensure_expanded(ops::Backend& be, const io::ModelConfig& c, int64_t s) {
    if (s <= S) return;
    S = std::max(s, S * 2);
    kvb.reset();
    kvg.reset();
    kvb = be.alloc(size_t(S) * size_t(c.num_attention_heads * (c.qk_nope_head_dim + c.v_head_dim)) * sizeof(float));
    kvg = be.alloc(size_t(S) * size_t(c.kv_row_width()) * sizeof(float));
  }

  // [rows, vocab] logits, grown on demand (a fresh zeroed buffer per step would cost a page-faulting memset).
  std::unique_ptr<ops::Buffer> logits;
  int64_t logit_rows = 0;
  float* logits_for(ops::Backend& be, int64_t rows, int64_t vocab) {
    if (rows > logit_rows) {
      logit_rows = std::max(rows, logit_rows * 2);
      logits = be.alloc(size_t(logit_rows) * size_t(vocab) * sizeof(float));
    }
    return logits->f32();
  }

  // Uploads the block tables of the batch's caches (read by the attention ops) and records their offsets.
  void upload_tables(ops::Backend& be, const Batch& b) {
    std::vector<int32_t> all;
    tab_off.clear();
    for (const SeqChunk& c : b.seqs) {
      tab_off.push_back(int64_t(all.size()));
      all.insert(all.end(), c.cache->blocks().begin(), c.cache->blocks().end());
    }
    if (int64_t(all.size()) > n_tab) {
      n_tab = std::max<int64_t>(int64_t(all.size()), n_tab * 2);
      btab = be.alloc(size_t(n_tab) * sizeof(int32_t));
    }
    if (!all.empty()) be.upload(btab->data(), all.data(), all.size() * sizeof(int32_t));
  }
};

}  // namespace ds::model
