// SPDX-License-Identifier: MIT
// Element-wise ops: rms_norm, layer_norm, rope, silu_mul, embed, add, copy. Row-parallel; each element is computed with the
// reference's formula (same fp32/fp64 steps), so results match ref closely and never depend on threads.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "backend/cpu/cpu_ops.h"
#include "backend/cpu/thread_pool.h"
#include "base/dtype.h"

namespace ds::cpu {

namespace {
// Threads only when the op is large enough to amortise the fork.
int threads_for(int64_t elems, int n_threads) { return elems < (1 << 15) ? 1 : n_threads; }

// row[0, n) of a weight table (row r) in fp32, as WeightView::at would give it (any format, block scales applied).
void weight_row(const WeightView& w, int64_t r, float* out, int64_t n) {
  if (n == w.cols) {
    w.row_f32(r, out);
    return;
  }
  for (int64_t i = 0; i < n; ++i) out[i] = w.at(r, i);
}
}  // namespace

void rms_norm(const ops::RmsNormParams& p, int n_threads) {
  std::vector<float> wv(size_t(p.n));
  weight_row(p.w, 0, wv.data(), p.n);
  parallel_for(p.M, threads_for(p.M * p.n, n_threads), [&](int64_t m) {
    const float* x = p.x + m * p.ldx;
    float* y = p.y + m * p.ldy;
    double ss = 0.0;
#pragma omp simd reduction(+ : ss)
    for (int64_t i = 0; i < p.n; ++i) ss += double(x[i]) * x[i];
    const float r = float(1.0 / std::sqrt(ss / double(p.n) + double(p.eps)));
    for (int64_t i = 0; i < p.n; ++i) y[i] = wv[i] * (x[i] * r);
  });
}

void layer_norm(const ops::LayerNormParams& p, int n_threads) {
  std::vector<float> wv(size_t(p.n)), bv(size_t(p.n));
  weight_row(p.w, 0, wv.data(), p.n);
  weight_row(p.b, 0, bv.data(), p.n);
  parallel_for(p.M, threads_for(p.M * p.n, n_threads), [&](int64_t m) {
    const float* x = p.x + m * p.ldx;
    float* y = p.y + m * p.ldy;
    double mean = 0.0, var = 0.0;
    for (int64_t i = 0; i < p.n; ++i) mean += x[i];
    mean /= double(p.n);
    for (int64_t i = 0; i < p.n; ++i) var += (x[i] - mean) * (x[i] - mean);
    const double r = 1.0 / std::sqrt(var / double(p.n) + double(p.eps));
    for (int64_t i = 0; i < p.n; ++i) y[i] = float((x[i] - mean) * r * wv[i] + bv[i]);
  });
}

void rope(const ops::RopeParams& p, int n_threads) {
  const int64_t half = p.dim / 2;
  parallel_for(p.M, threads_for(p.M * p.n_heads * p.dim * 8, n_threads), [&](int64_t m) {
    // cos/sin once per token (shared by all heads), with the reference's fp32 angle.
    std::vector<float> cs(size_t(2 * half));
    const float pos = float(p.pos[m]);
    for (int64_t j = 0; j < half; ++j) {
      const float ang = pos * p.inv_freq[j];
      cs[2 * j] = std::cos(ang) * p.attn_factor;
      cs[2 * j + 1] = std::sin(ang) * p.attn_factor;
    }
    for (int64_t h = 0; h < p.n_heads; ++h) {
      float* x = p.x + m * p.ld + h * p.head_stride;
      if (p.half) {  // pair j is (x[j], x[j + half])
        for (int64_t j = 0; j < half; ++j) {
          const float c = cs[2 * j], s = cs[2 * j + 1];
          const float a = x[j], b = x[j + half];
          x[j] = a * c - b * s;
          x[j + half] = a * s + b * c;
        }
      } else {  // pair j is (x[2j], x[2j + 1])
        for (int64_t j = 0; j < half; ++j) {
          const float c = cs[2 * j], s = cs[2 * j + 1];
          const float a = x[2 * j], b = x[2 * j + 1];
          x[2 * j] = a * c - b * s;
          x[2 * j + 1] = a * s + b * c;
        }
      }
    }
  });
}

void silu_mul(const ops::SiluMulParams& p, int n_threads) {
  const int64_t chunks = (p.n + 1023) / 1024;
  parallel_for(p.M * chunks, threads_for(p.M * p.n * 8, n_threads), [&](int64_t mc) {
    const int64_t m = mc / chunks, c = (mc % chunks) * 1024, e = std::min<int64_t>(p.n, c + 1024);
    for (int64_t i = c; i < e; ++i) {
      const float g = p.g[m * p.ldg + i];
      p.out[m * p.ldo + i] = g / (1.0f + std::exp(-g)) * p.u[m * p.ldu + i];
    }
  });
}

void embed(const ops::EmbedParams& p, int n_threads) {
  parallel_for(p.M, threads_for(p.M * p.table.cols, n_threads),
               [&](int64_t m) { weight_row(p.table, p.ids[m], p.out + m * p.ldo, p.table.cols); });
}

void add(const ops::AddParams& p, int n_threads) {
  parallel_for(p.M, threads_for(p.M * p.n, n_threads), [&](int64_t m) {
    const float* a = p.a + m * p.lda;
    const float* b = p.b + m * p.ldb;
    float* y = p.y + m * p.ldy;
#pragma omp simd
    for (int64_t i = 0; i < p.n; ++i) y[i] = a[i] + b[i];
  });
}

void copy(const ops::CopyParams& p, int n_threads) {
  for (int64_t m = 0; m < p.M; ++m) std::memmove(p.dst + m * p.ldd, p.src + m * p.lds, size_t(p.n) * sizeof(float));
}

}  // namespace ds::cpu
