// SPDX-License-Identifier: MIT
// MLA attention (prefill multi-head form and absorbed latent decode form). One work item per (query, head), spread
// over threads; scores with the ISA's dot product, fp32 softmax (fp64 sum), output as an ordered fp32 axpy over keys.
// Each item's arithmetic is fixed, so results do not depend on the thread count.
#include <algorithm>
#include <cmath>
#include <vector>

#include "backend/cpu/cpu_ops.h"
#include "backend/cpu/kernels.h"
#include "backend/cpu/thread_pool.h"

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

}  // namespace ds::cpu
