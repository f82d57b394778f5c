// SPDX-License-Identifier: MIT
// Grouped-query attention (Qwen2, Llama, Qwen3: transformers' modeling_{qwen2,llama,qwen3}.py). The cache keeps, per
// token and layer, K of every kv head then V of every kv head (post-norm, post-RoPE K). Every chunk runs the same
// op (ops::GqaAttentionParams), whose rows do not depend on how the sequence was split into chunks.
#include <algorithm>
#include <vector>

#include "base/error.h"
#include "model/model.h"
#include "model/parallel.h"
#include "model/scratch.h"

namespace ds::model {

void Model::attention_gqa(int64_t l, const Batch& batch, int64_t T, const std::vector<int64_t>& pos0) {
  const LayerWeights& w = w_.layers[size_t(l)];
  const Biases& b = biases_[size_t(l)];
  // Split across processes by kv head (model/parallel.cpp), this rank computes Hkv of the kv heads and their query
  // heads, and its cache rows hold only their K and V.
  const bool split = par_ && par_->gqa_split;
  const int64_t D = cfg_.hidden_size, Hall = cfg_.num_attention_heads, G = Hall / cfg_.num_key_value_heads;
  const int64_t Hkv = split ? par_->kv_heads.size() : cfg_.num_key_value_heads, H = Hkv * G;
  const int64_t hd = cfg_.head_dim, ldq = H * hd, kvw = Hkv * hd, ldkv = 2 * kvw;
  const float eps = float(cfg_.rms_norm_eps);
  float* xn = s_->xn->f32();
  float* q = s_->q->f32();      // [T, H, hd]
  float* kv = s_->kva->f32();   // [T, K heads | V heads]: the new cache rows
  float* attn = s_->attn->f32();  // [T, H, hd]

  auto mmp = [&](const WeightView& wv, float* y, int64_t ldy, int64_t N) {
    ops::MatmulParams p;
    p.x = xn; p.ldx = D; p.w = wv; p.y = y; p.ldy = ldy;
    p.M = T; p.N = N; p.K = D; p.precision = precision_for(wv);
    return p;
  };
  const ops::MatmulParams qkv[3] = {mmp(w.q_proj, q, ldq, ldq), mmp(w.k_proj, kv, ldkv, kvw),
                                    mmp(w.v_proj, kv + kvw, ldkv, kvw)};
  be_.matmul_batch(qkv, 3);
  if (b.q) {  // one bias row broadcast over the tokens
    be_.add({q, ldq, b.q, 0, q, ldq, T, ldq});
    be_.add({kv, ldkv, b.k, 0, kv, ldkv, T, kvw});
    be_.add({kv + kvw, ldkv, b.v, 0, kv + kvw, ldkv, T, kvw});
  }
  if (w.q_norm.data) {  // Qwen3: RMSNorm over each head's dims, before RoPE
    be_.rms_norm({q, hd, w.q_norm, q, hd, T * H, hd, eps});
    for (int64_t h = 0; h < Hkv; ++h) be_.rms_norm({kv + h * hd, ldkv, w.k_norm, kv + h * hd, ldkv, T, hd, eps});
  }
  const int32_t* pos = static_cast<const int32_t*>(s_->pos->data());
  const float* inv_freq = inv_freq_->f32();
  const bool half = !cfg_.rope_interleaved;
  be_.rope({q, ldq, hd, T, H, hd, pos, inv_freq, rope_.attn_factor, half});
  be_.rope({kv, ldkv, hd, T, Hkv, hd, pos, inv_freq, rope_.attn_factor, half});

  int64_t off = 0;
  for (size_t j = 0; j < batch.seqs.size(); ++j) {
    const int64_t n = batch.seqs[j].n, p0 = pos0[j];
    const ops::KvRows rows = cache_rows(batch, j, l);  // Model::forward made [p0, p0 + n) writable
    be_.kv_write({kv + off * ldkv, ldkv, rows, p0, n});
    ops::GqaAttentionParams p;
    p.q = q + off * ldq; p.ldq = ldq; p.kv = rows;
    p.out = attn + off * ldq; p.ldo = ldq;
    p.T = n; p.S = p0 + n; p.H = H; p.Hkv = Hkv; p.hd = hd; p.pos0 = p0; p.scale = rope_.softmax_scale;
    be_.gqa_attention(p);
    off += n;
  }
  if (split) {  // every rank's heads' outputs, in head order, for the row-split o_proj below
    float* full = par_buf(3, size_t(T * Hall * hd));
    gather_cols(attn, T, par_->gqa_cols, full, Hall * hd);
    attn = full;
  }
  ops::MatmulParams o;
  o.x = attn; o.ldx = Hall * hd; o.w = w.o_proj; o.y = s_->x->f32(); o.ldy = D;
  o.M = T; o.N = D; o.K = Hall * hd; o.accumulate = true; o.precision = precision_for(w.o_proj);  // residual add fused
  if (par_ && par_->tp) {  // split across processes: o_proj rows are this rank's, then gathered
    o.N = par_->d[size_t(par_->rank)].size();
    o.y = par_buf(4, size_t(T * std::max<int64_t>(o.N, 1)));
    o.ldy = o.N;
    o.accumulate = false;
    if (o.N > 0) be_.matmul(o);
    if (!b.o) {
      add_gathered(o.y, T, par_->d);
      return;
    }
    float* y = par_buf(1, size_t(T * D));
    gather_cols(o.y, T, par_->d, y, D);
    be_.add({y, D, b.o, 0, y, D, T, D});
    be_.add({s_->x->f32(), D, y, D, s_->x->f32(), D, T, D});
    return;
  }
  if (!b.o) {
    be_.matmul(o);
    return;
  }
  o.y = s_->sel->f32(); o.accumulate = false;  // o_proj(attn) + bias, then the residual
  be_.matmul(o);
  be_.add({o.y, D, b.o, 0, o.y, D, T, D});
  be_.add({s_->x->f32(), D, o.y, D, s_->x->f32(), D, T, D});
}

}  // namespace ds::model
