// SPDX-License-Identifier: MIT
// Reference element-wise ops: rms_norm, layer_norm, fp8_round, rope, silu_mul, embed, add, copy.
#include <algorithm>
#include <cmath>
#include <cstring>

#include "base/dtype.h"
#include "ops/ref/ref_backend.h"

namespace ds::ref {

void rms_norm(const ops::RmsNormParams& p) {
  for (int64_t m = 0; m < p.M; ++m) {
    const float* x = p.x + m * p.ldx;
    float* y = p.y + m * p.ldy;
    double ss = 0.0;
    for (int64_t i = 0; i < p.n; ++i) ss += double(x[i]) * x[i];
    const float r = float(1.0 / std::sqrt(ss / double(p.n) + double(p.eps)));
    for (int64_t i = 0; i < p.n; ++i) y[i] = p.w.at(0, i) * (x[i] * r);
  }
}

void layer_norm(const ops::LayerNormParams& p) {
  for (int64_t m = 0; m < p.M; ++m) {
    const float* x = p.x + m * p.ldx;
    float* y = p.y + m * p.ldy;
    double mean = 0.0, var = 0.0;
    for (int64_t i = 0; i < p.n; ++i) mean += x[i];
    mean /= double(p.n);
    for (int64_t i = 0; i < p.n; ++i) var += (x[i] - mean) * (x[i] - mean);
    const double r = 1.0 / std::sqrt(var / double(p.n) + double(p.eps));
    for (int64_t i = 0; i < p.n; ++i) y[i] = float((x[i] - mean) * r * p.w.at(0, i) + p.b.at(0, i));
  }
}

void fp8_round(const ops::Fp8RoundParams& p) {
  for (int64_t m = 0; m < p.M; ++m)
    for (int64_t b0 = 0; b0 < p.n; b0 += p.block) {
      float* x = p.x + m * p.ld + b0;
      const int64_t n = std::min(p.block, p.n - b0);
      float amax = 0.0f;
      for (int64_t i = 0; i < n; ++i) amax = std::max(amax, std::fabs(x[i] * p.prescale));
      // 2^ceil(log2(v)), exactly: v = f · 2^e with f in [0.5, 1)
      int e = 0;
      const float f = std::frexp(std::max(amax, 1e-4f) * (1.0f / 448.0f), &e);
      const float s = std::ldexp(1.0f, f == 0.5f ? e - 1 : e);
      for (int64_t i = 0; i < n; ++i) x[i] = fp8_e4m3_to_f32(f32_to_fp8_e4m3(x[i] * p.prescale / s)) * s;
    }
}

void rope(const ops::RopeParams& p) {
  const int64_t half = p.dim / 2;
  for (int64_t m = 0; m < p.M; ++m) {
    const float pos = float(p.pos[m]);
    for (int64_t h = 0; h < p.n_heads; ++h) {
      float* x = p.x + m * p.ld + h * p.head_stride;
      for (int64_t j = 0; j < half; ++j) {
        const float ang = pos * p.inv_freq[j];
        const float c = std::cos(ang) * p.attn_factor, s = std::sin(ang) * p.attn_factor;
        const int64_t i0 = p.half ? j : 2 * j, i1 = p.half ? j + half : 2 * j + 1;  // the pair's two elements
        const float a = x[i0], b = x[i1];
        x[i0] = a * c - b * s;
        x[i1] = a * s + b * c;
      }
    }
  }
}

void silu_mul(const ops::SiluMulParams& p) {
  for (int64_t m = 0; m < p.M; ++m)
    for (int64_t i = 0; i < p.n; ++i) {
      const float g = p.g[m * p.ldg + i];
      p.out[m * p.ldo + i] = g / (1.0f + std::exp(-g)) * p.u[m * p.ldu + i];
    }
}

void embed(const ops::EmbedParams& p) {
  for (int64_t m = 0; m < p.M; ++m) p.table.row_f32(p.ids[m], p.out + m * p.ldo);
}

void add(const ops::AddParams& p) {
  for (int64_t m = 0; m < p.M; ++m)
    for (int64_t i = 0; i < p.n; ++i) p.y[m * p.ldy + i] = p.a[m * p.lda + i] + p.b[m * p.ldb + i];
}

void copy(const ops::CopyParams& p) {
  for (int64_t m = 0; m < p.M; ++m) std::memmove(p.dst + m * p.ldd, p.src + m * p.lds, size_t(p.n) * sizeof(float));
}

}  // namespace ds::ref
