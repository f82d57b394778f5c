// SPDX-License-Identifier: MIT
// Multi-head Latent Attention (deepseek_spec.md §1.3, §1.6). The latent cache holds the post-norm c_kv and the
// post-RoPE k_pe. Each chunk runs the form Model::attention_form chooses: the multi-head form (prompt chunks) expands
// K/V from the cache through kv_b_proj; the absorbed form (decode, short verify chunks) folds W_UK into the query
// and W_UV into the output, so attention reads only the 576-wide cache.
// DeepSeek-V3.2 (AttentionKind::MlaSparse, deepseek_spec.md §2.5): a lightning indexer keeps one key per token after
// the latent in the cache row (c_kv | k_pe | k_index), scores every earlier position for each query, and both forms
// attend only to the index_topk best.
#include <algorithm>
#include <cmath>
#include <vector>

#include "base/error.h"
#include "model/model.h"
#include "model/parallel.h"
#include "model/scratch.h"

namespace ds::model {

void Model::attention_mla(int64_t l, const Batch& batch, int64_t T, const std::vector<int64_t>& pos0) {
  const LayerWeights& w = w_.layers[l];
  const int64_t D = cfg_.hidden_size, H = cfg_.num_attention_heads, nope = cfg_.qk_nope_head_dim;
  const int64_t dr = cfg_.qk_rope_head_dim, dv = cfg_.v_head_dim, r = cfg_.kv_lora_rank, dqk = nope + dr;
  // Split across processes (model/parallel.cpp), this rank computes Hl of the H heads; kv_a (the latent cache) and
  // q_a are every rank's.
  const bool split = par_ && par_->tp;
  const int64_t Hl = split ? par_->heads.size() : H;
  const bool sparse = arch_.layers[size_t(l)].attention == AttentionKind::MlaSparse;
  const int64_t ldq = Hl * dqk, ldkv = cfg_.kv_row_width(), ldkvb = Hl * (nope + dv), ldo = Hl * dv;
  const float eps = float(cfg_.rms_norm_eps);
  float* xn = s_->xn->f32();
  float* q = s_->q->f32();      // [T, H, nope | rope]
  float* kva = s_->kva->f32();  // [T, c_kv | k_pe]
  float* attn = s_->attn->f32();  // [T, H, dv]

  auto mmp = [&](const float* x, int64_t ldx, const WeightView& wv, float* y, int64_t ldy, int64_t M, int64_t N,
                 int64_t K, bool acc = false, bool kn = false) {
    ops::MatmulParams p;
    p.x = x; p.ldx = ldx; p.w = wv; p.w_kn = kn; p.y = y; p.ldy = ldy;
    p.M = M; p.N = N; p.K = K; p.accumulate = acc; p.precision = precision_for(wv);
    return p;
  };
  auto mm = [&](const float* x, int64_t ldx, const WeightView& wv, float* y, int64_t ldy, int64_t M, int64_t N,
                int64_t K, bool acc = false, bool kn = false) { be_.matmul(mmp(x, ldx, wv, y, ldy, M, N, K, acc, kn)); };

  // The query's first projection and the latent KV projection both read xn: one batch (with the indexer's key and
  // head weights, which read it too). The indexer's products feed a discrete choice: always fp32.
  const int64_t qr = cfg_.q_lora_rank, nI = cfg_.index_n_heads, dI = cfg_.index_head_dim;
  float* qa = s_->qa->f32();  // [T, q_lora_rank] (q_lora models)
  float* kidx = kva + r + dr;  // the indexer's key, after the latent in the row
  float* iq = s_->iq->f32();   // [T, nI * dI]
  float* iw = s_->iw->f32();   // [T, nI]
  auto f32 = [](ops::MatmulParams p) {
    p.precision = ops::Precision::F32;
    return p;
  };
  std::vector<ops::MatmulParams> first = {mmp(xn, D, w.kv_a_proj_with_mqa, kva, ldkv, T, r + dr, D)};
  if (qr > 0) first.push_back(mmp(xn, D, w.q_a_proj, qa, qr, T, qr, D));
  else if (Hl > 0) first.push_back(mmp(xn, D, w.q_proj, q, ldq, T, ldq, D));
  if (sparse) {
    first.push_back(f32(mmp(xn, D, w.index_wk, kidx, ldkv, T, dI, D)));
    first.push_back(f32(mmp(xn, D, w.index_weights_proj, iw, nI, T, nI, D)));
  }
  be_.matmul_batch(first.data(), first.size());
  if (qr > 0 && (Hl > 0 || sparse)) {
    be_.rms_norm({qa, qr, w.q_a_layernorm, qa, qr, T, qr, eps});
    std::vector<ops::MatmulParams> second;
    if (Hl > 0) second.push_back(mmp(qa, qr, w.q_b_proj, q, ldq, T, ldq, qr));
    if (sparse) second.push_back(f32(mmp(qa, qr, w.index_wq_b, iq, nI * dI, T, nI * dI, qr)));
    be_.matmul_batch(second.data(), second.size());
  }
  be_.rms_norm({kva, ldkv, w.kv_a_layernorm, kva, ldkv, T, r, eps});
  const int32_t* pos = static_cast<const int32_t*>(s_->pos->data());
  const float* inv_freq = inv_freq_->f32();
  be_.rope({kva + r, ldkv, 0, T, 1, dr, pos, inv_freq, rope_.attn_factor});
  if (Hl > 0) be_.rope({q + nope, ldq, dqk, T, Hl, dr, pos, inv_freq, rope_.attn_factor});
  if (sparse) {  // LayerNorm key (eps 1e-6 as DeepSeek's code fixes it); RoPE on the first dr dims, pairs (i, i + dr/2)
    be_.layer_norm({kidx, ldkv, w.index_k_norm, w.index_k_norm_bias, kidx, ldkv, T, dI, 1e-6f});
    be_.rope({kidx, ldkv, 0, T, 1, dr, pos, inv_freq, rope_.attn_factor, /*half=*/true});
    be_.rope({iq, nI * dI, dI, T, nI, dr, pos, inv_freq, rope_.attn_factor, /*half=*/true});
    if (opt_.indexer_fp8) {  // DeepSeek's numerics: Hadamard-rotated q and k (x H / sqrt(d)) rounded through e4m3
      float* q8 = s_->iq8->f32();
      float* k8 = s_->ik8->f32();
      const ops::MatmulParams rot[2] = {f32(mmp(iq, dI, hadamard_w_, q8, dI, T * nI, dI, dI)),
                                        f32(mmp(kidx, ldkv, hadamard_w_, k8, dI, T, dI, dI))};
      be_.matmul_batch(rot, 2);
      const float scale = float(1.0 / std::sqrt(double(dI)));
      be_.fp8_round({q8, dI, T * nI, dI, 128, scale});
      be_.fp8_round({k8, dI, T, dI, 128, scale});
      be_.copy({k8, dI, kidx, ldkv, T, dI});  // the cached key is the rounded one
      iq = q8;
    }
  }

  int64_t off = 0;
  for (size_t j = 0; j < batch.seqs.size(); ++j) {
    const int64_t n = batch.seqs[j].n, p0 = pos0[j], S = p0 + n;
    const ops::KvRows rows = cache_rows(batch, j, l);  // pool blocks (Model::forward made [p0, S) writable)
    be_.kv_write({kva + off * ldkv, ldkv, rows, p0, n});
    if (Hl == 0) {  // a rank without heads (more ranks than heads) only keeps the cache
      off += n;
      continue;
    }
    const float* qj = q + off * ldq;
    float* oj = attn + off * ldo;
    const int64_t topk = cfg_.index_topk;
    const int32_t* sel =
        sparse ? index_select(l, rows, iq + off * nI * dI, iw + off * nI, n, p0, static_cast<int32_t*>(s_->isel->data()) + off * topk)
               : nullptr;
    if (attention_form(p0, n) == AttentionForm::MultiHead) {
      // The multi-head form expands every cached row through kv_b_proj in one product, so the rows are first
      // read from their blocks into one contiguous fp32 [S, r + dr] buffer (their stored values: results do not
      // depend on the block layout, and the chunk's own rows are the values later steps will read).
      s_->ensure_expanded(be_, cfg_, S);
      float* kvg = s_->kvg->f32();
      be_.kv_read({rows, 0, S, kvg, ldkv});
      float* kvb = s_->kvb->f32();  // [S, H, k_nope | v]
      mm(kvg, ldkv, w.kv_b_proj, kvb, ldkvb, S, ldkvb, r);
      ops::MlaPrefillParams p;
      p.q = qj; p.ldq = ldq;
      p.k_nope = kvb; p.ldk = ldkvb; p.hsk = nope + dv;
      p.k_pe = kvg + r; p.ldkpe = ldkv;
      p.v = kvb + nope; p.ldv = ldkvb; p.hsv = nope + dv;
      p.out = oj; p.ldo = ldo;
      p.T = n; p.S = S; p.H = Hl; p.nope = nope; p.rope = dr; p.dv = dv; p.pos0 = p0; p.scale = rope_.softmax_scale;
      p.sel = sel; p.ldsel = topk; p.n_sel = topk;
      be_.mla_prefill(p);
    } else {
      float* qlat = s_->qlat->f32();  // [n, H, c | rope]
      float* olat = s_->olat->f32();  // [n, H, c]
      const int64_t ldql = Hl * (r + dr);
      // With the halves stored per head (a GGUF's attn_k_b / attn_v_b, in the file's format) both products read
      // them as plain row-major weights; otherwise W_UK[h] is read transposed from kv_b_proj.
      const bool halves = w.k_b_proj.data != nullptr;
      std::vector<ops::MatmulParams> heads;
      for (int64_t h = 0; h < Hl; ++h) {
        // q_lat[h] = q_nope[h] · W_UK[h], W_UK[h] = kv_b_proj rows [h*(nope+dv), +nope) seen as [nope, r]
        // (= k_b_proj rows [h*r, +r) transposed).
        float* ql = qlat + h * (r + dr);
        heads.push_back(halves ? mmp(qj + h * dqk, ldq, w.k_b_proj.row_slice(h * r, r), ql, ldql, n, r, nope)
                               : mmp(qj + h * dqk, ldq, w.kv_b_proj.row_slice(h * (nope + dv), nope), ql, ldql, n, r,
                                     nope, false, true));
        be_.copy({qj + h * dqk + nope, ldq, ql + r, ldql, n, dr});
      }
      be_.matmul_batch(heads.data(), heads.size());
      ops::MlaDecodeParams p;
      p.q = qlat; p.ldq = ldql; p.kv = rows; p.out = olat; p.ldo = Hl * r;
      p.T = n; p.S = S; p.H = Hl; p.rank = r; p.rope = dr; p.pos0 = p0; p.scale = rope_.softmax_scale;
      p.sel = sel; p.ldsel = topk; p.n_sel = topk;
      be_.mla_decode(p);
      heads.clear();
      for (int64_t h = 0; h < Hl; ++h)  // o[h] = W_UV[h] · o_lat[h], W_UV[h] = rows [h*(nope+dv)+nope, +dv)
        heads.push_back(mmp(olat + h * r, Hl * r,
                            halves ? w.v_b_proj.row_slice(h * dv, dv) : w.kv_b_proj.row_slice(h * (nope + dv) + nope, dv),
                            oj + h * dv, ldo, n, dv, r));
      be_.matmul_batch(heads.data(), heads.size());
    }
    off += n;
  }
  if (!split) {
    mm(attn, ldo, w.o_proj, s_->x->f32(), D, T, D, ldo, /*acc=*/true);  // residual add fused into the projection
    return;
  }
  // Every rank's heads gathered into [T, H * dv]; this rank's o_proj rows; those gathered and added to x.
  float* full = par_buf(3, size_t(T * H * dv));
  gather_cols(attn, T, par_->attn_cols, full, H * dv);
  const int64_t Dr = par_->d[size_t(par_->rank)].size();
  float* y = par_buf(4, size_t(T * std::max<int64_t>(Dr, 1)));
  if (Dr > 0) mm(full, H * dv, w.o_proj, y, Dr, T, Dr, H * dv);
  add_gathered(y, T, par_->d);
}

const int32_t* Model::index_select(int64_t l, const ops::KvRows& rows, const float* iq, const float* iw, int64_t n,
                                   int64_t p0, int32_t* sel) {
  const int64_t topk = cfg_.index_topk, S = p0 + n;
  const bool all = S <= topk;  // every query may attend to every earlier position: no choice to make
  if (!all) {
    ops::IndexerParams p;
    p.q = iq; p.ldq = cfg_.index_n_heads * cfg_.index_head_dim;
    p.w = iw; p.ldw = cfg_.index_n_heads;
    p.kv = rows; p.key_off = cfg_.kv_lora_rank + cfg_.qk_rope_head_dim;
    p.T = n; p.S = S; p.nh = cfg_.index_n_heads; p.d = cfg_.index_head_dim; p.topk = topk; p.pos0 = p0;
    // The weights' global factors (heads^-1/2 · head_dim^-1/2) do not change the choice; kept for the scores' scale.
    p.scale = float(1.0 / std::sqrt(double(cfg_.index_n_heads) * double(cfg_.index_head_dim)));
    p.sel = sel; p.ldsel = topk;
    be_.indexer(p);
  }
  if (index_log_) {
    IndexRecord rec{l, p0, n, std::vector<int32_t>(size_t(n * topk), -1)};
    if (all) {
      for (int64_t i = 0; i < n; ++i)
        for (int64_t t = 0; t <= p0 + i; ++t) rec.sel[size_t(i * topk + t)] = int32_t(t);
    } else {
      be_.download(rec.sel.data(), sel, rec.sel.size() * sizeof(int32_t));
    }
    index_log_->push_back(std::move(rec));
  }
  return all ? nullptr : sel;
}

}  // namespace ds::model
