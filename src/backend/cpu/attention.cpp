// SPDX-License-Identifier: MIT
// MLA attention (prefill multi-head form and absorbed latent decode form) and grouped-query attention. One work item
// per (query, head) (GQA: per (query, kv head), the group's query heads together), spread over threads; scores with
// the ISA's dot product, fp32 softmax (fp64 sum), output as an ordered fp32 axpy over keys. Each item's arithmetic is
// fixed, so results do not depend on the thread count.
#include <algorithm>
#include <cmath>
#include <vector>

#include "backend/cpu/cpu_ops.h"
#include "backend/cpu/kernels.h"
#include "backend/cpu/thread_pool.h"
#include "base/error.h"

namespace ds::cpu {

namespace {
// sc[0, n) -> exp(sc - max); returns 1 / sum.
float softmax_unnorm(float* sc, int64_t n) {
  float mx = -INFINITY;
  for (int64_t t = 0; t < n; ++t) mx = std::max(mx, sc[t]);
  double sum = 0.0;
  for (int64_t t = 0; t < n; ++t) sum += (sc[t] = std::exp(sc[t] - mx));
  return float(1.0 / sum);
}

int threads_for(int64_t flops, int64_t items, int n_threads) {
  return int(std::min<int64_t>(items, flops < (1 << 16) ? 1 : n_threads));
}
}  // namespace

void mla_decode(const ops::MlaDecodeParams& p, int n_threads) {
  const Kernels& kern = active_kernels();
  const int64_t items = p.T * p.H, dq = p.rank + p.rope;
  const int nt = threads_for(items * p.S * dq * 2, items, n_threads);
  const int64_t bs = p.block_table ? p.block_size : std::max<int64_t>(p.S, 1);  // keys per contiguous run
  std::vector<std::vector<float>> scs(static_cast<size_t>(nt), std::vector<float>(size_t(std::max<int64_t>(p.S, 1))));
  parallel_dynamic(items, nt, [&](int64_t it, int th) {
    std::vector<float>& sc = scs[size_t(th)];
    {
      const int64_t i = it / p.H, h = it % p.H;
      const int64_t n_keys = std::min(p.S, p.pos0 + i + 1);
      const float* q = p.q + i * p.ldq + h * dq;
      float* o = p.out + i * p.ldo + h * p.rank;
      std::fill_n(o, p.rank, 0.0f);
      if (n_keys <= 0) return;
      // Keys block by block (a contiguous cache is one block); the per-key operations and their order are the
      // same for every layout, so a paged cache gives bitwise the same result as a contiguous one.
      for (int64_t t0 = 0; t0 < n_keys; t0 += bs) {
        const float* kv = ops::mla_kv_row(p, t0);
        const int64_t m = std::min(bs, n_keys - t0);
        for (int64_t j = 0; j < m; ++j) sc[t0 + j] = kern.dot(q, kv + j * p.ldkv, dq) * p.scale;
      }
      const float inv = softmax_unnorm(sc.data(), n_keys);
      for (int64_t t0 = 0; t0 < n_keys; t0 += bs) {
        const float* kv = ops::mla_kv_row(p, t0);
        const int64_t m = std::min(bs, n_keys - t0);
        for (int64_t j = 0; j < m; ++j) kern.axpy(sc[t0 + j], kv + j * p.ldkv, o, p.rank);
      }
      for (int64_t c = 0; c < p.rank; ++c) o[c] *= inv;
    }
  });
}

void mla_prefill(const ops::MlaPrefillParams& p, int n_threads) {
  const Kernels& kern = active_kernels();
  const int64_t items = p.T * p.H, dq = p.nope + p.rope;
  const int nt = threads_for(items * p.S * (dq + p.dv), items, n_threads);
  std::vector<std::vector<float>> scs(static_cast<size_t>(nt), std::vector<float>(size_t(std::max<int64_t>(p.S, 1))));
  parallel_dynamic(items, nt, [&](int64_t it, int th) {
    std::vector<float>& sc = scs[size_t(th)];
    {
      const int64_t i = it / p.H, h = it % p.H;
      const int64_t n_keys = std::min(p.S, p.pos0 + i + 1);
      const float* q = p.q + i * p.ldq + h * dq;
      float* o = p.out + i * p.ldo + h * p.dv;
      std::fill_n(o, p.dv, 0.0f);
      if (n_keys <= 0) return;
      for (int64_t t = 0; t < n_keys; ++t) {
        const float d = kern.dot(q, p.k_nope + t * p.ldk + h * p.hsk, p.nope) +
                        kern.dot(q + p.nope, p.k_pe + t * p.ldkpe, p.rope);
        sc[t] = d * p.scale;
      }
      const float inv = softmax_unnorm(sc.data(), n_keys);
      for (int64_t t = 0; t < n_keys; ++t) kern.axpy(sc[t], p.v + t * p.ldv + h * p.hsv, o, p.dv);
      for (int64_t c = 0; c < p.dv; ++c) o[c] *= inv;
    }
  });
}

// One item per (query row i, kv head): the g = H / Hkv query heads of the group share one pass over that kv head's K
// rows (each row scored against all g queries while it is in cache), then one pass over its V rows. Per (row, head)
// the operations and their order are fixed (dot per key in key order, softmax, axpy per key in key order), so a row's
// result does not depend on T, pos0, the cache layout (paged or contiguous) or the thread count.
void gqa_attention(const ops::GqaAttentionParams& p, int n_threads) {
  if (p.T <= 0 || p.H <= 0) return;
  DS_CHECK(p.Hkv > 0 && p.H % p.Hkv == 0, "gqa_attention: H ", p.H, " is not a multiple of Hkv ", p.Hkv);
  const Kernels& kern = active_kernels();
  const int64_t g = p.H / p.Hkv, items = p.T * p.Hkv, hd = p.hd, S1 = std::max<int64_t>(p.S, 1);
  const int nt = threads_for(p.T * p.H * p.S * hd * 4, items, n_threads);
  const int64_t bs = p.block_table ? p.block_size : S1;  // keys per contiguous run
  // Per thread: scores [g, S1] (head r's at r * S1), then the g softmax normalisers.
  std::vector<std::vector<float>> scs(static_cast<size_t>(nt), std::vector<float>(size_t(g * S1 + g)));
  parallel_dynamic(items, nt, [&](int64_t it, int th) {
    float* sc = scs[size_t(th)].data();
    float* inv = sc + g * S1;
    const int64_t i = it / p.Hkv, kvh = it % p.Hkv;
    const int64_t n_keys = std::min(p.S, p.pos0 + i + 1);
    const float* q = p.q + i * p.ldq + kvh * g * hd;  // the group's query heads, hd apart
    float* o = p.out + i * p.ldo + kvh * g * hd;
    std::fill_n(o, g * hd, 0.0f);
    if (n_keys <= 0) return;
    const int64_t koff = kvh * hd, voff = (p.Hkv + kvh) * hd;
    for (int64_t t0 = 0; t0 < n_keys; t0 += bs) {
      const float* kv = ops::gqa_kv_row(p, t0);
      const int64_t m = std::min(bs, n_keys - t0);
      for (int64_t j = 0; j < m; ++j) {
        const float* k = kv + j * p.ldkv + koff;
        for (int64_t r = 0; r < g; ++r) sc[r * S1 + t0 + j] = kern.dot(q + r * hd, k, hd) * p.scale;
      }
    }
    for (int64_t r = 0; r < g; ++r) inv[r] = softmax_unnorm(sc + r * S1, n_keys);
    for (int64_t t0 = 0; t0 < n_keys; t0 += bs) {
      const float* kv = ops::gqa_kv_row(p, t0);
      const int64_t m = std::min(bs, n_keys - t0);
      for (int64_t j = 0; j < m; ++j) {
        const float* v = kv + j * p.ldkv + voff;
        for (int64_t r = 0; r < g; ++r) kern.axpy(sc[r * S1 + t0 + j], v, o + r * hd, hd);
      }
    }
    for (int64_t r = 0; r < g; ++r)
      for (int64_t c = 0; c < hd; ++c) o[r * hd + c] *= inv[r];
  });
}

}  // namespace ds::cpu
