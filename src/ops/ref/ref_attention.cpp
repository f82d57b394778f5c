// SPDX-License-Identifier: MIT
// Reference attention: MLA in both forms (multi-head prefill and absorbed latent decode) and grouped-query attention
// over a K/V cache; fp64 dot products and softmax sums.
#include <algorithm>
#include <cmath>
#include <vector>

#include "ops/ref/ref_backend.h"

namespace ds::ref {

void mla_prefill(const ops::MlaPrefillParams& p) {
  std::vector<double> sc(size_t(p.S));
  for (int64_t i = 0; i < p.T; ++i) {
    const int64_t n_keys = std::min(p.S, p.pos0 + i + 1);
    for (int64_t h = 0; h < p.H; ++h) {
      const float* q = p.q + i * p.ldq + h * (p.nope + p.rope);
      double mx = -INFINITY;
      for (int64_t t = 0; t < n_keys; ++t) {
        const float* kn = p.k_nope + t * p.ldk + h * p.hsk;
        const float* kp = p.k_pe + t * p.ldkpe;
        double d = 0.0;
        for (int64_t c = 0; c < p.nope; ++c) d += double(q[c]) * kn[c];
        for (int64_t c = 0; c < p.rope; ++c) d += double(q[p.nope + c]) * kp[c];
        sc[t] = d * p.scale;
        mx = std::max(mx, sc[t]);
      }
      double sum = 0.0;
      for (int64_t t = 0; t < n_keys; ++t) sum += (sc[t] = std::exp(sc[t] - mx));
      float* o = p.out + i * p.ldo + h * p.dv;
      for (int64_t c = 0; c < p.dv; ++c) {
        double acc = 0.0;
        for (int64_t t = 0; t < n_keys; ++t) acc += sc[t] * p.v[t * p.ldv + h * p.hsv + c];
        o[c] = float(acc / sum);
      }
    }
  }
}

void mla_decode(const ops::MlaDecodeParams& p) {
  std::vector<double> sc(size_t(p.S));
  for (int64_t i = 0; i < p.T; ++i) {
    const int64_t n_keys = std::min(p.S, p.pos0 + i + 1);
    for (int64_t h = 0; h < p.H; ++h) {
      const float* q = p.q + i * p.ldq + h * (p.rank + p.rope);
      double mx = -INFINITY;
      for (int64_t t = 0; t < n_keys; ++t) {
        const float* kv = ops::mla_kv_row(p, t);
        double d = 0.0;
        for (int64_t c = 0; c < p.rank + p.rope; ++c) d += double(q[c]) * kv[c];
        sc[t] = d * p.scale;
        mx = std::max(mx, sc[t]);
      }
      double sum = 0.0;
      for (int64_t t = 0; t < n_keys; ++t) sum += (sc[t] = std::exp(sc[t] - mx));
      float* o = p.out + i * p.ldo + h * p.rank;
      for (int64_t c = 0; c < p.rank; ++c) {
        double acc = 0.0;
        for (int64_t t = 0; t < n_keys; ++t) acc += sc[t] * ops::mla_kv_row(p, t)[c];
        o[c] = float(acc / sum);
      }
    }
  }
}

void gqa_attention(const ops::GqaAttentionParams& p) {
  std::vector<double> sc(size_t(p.S));
  const int64_t g = p.H / p.Hkv;
  for (int64_t i = 0; i < p.T; ++i) {
    const int64_t n_keys = std::min(p.S, p.pos0 + i + 1);
    for (int64_t h = 0; h < p.H; ++h) {
      const int64_t koff = (h / g) * p.hd, voff = (p.Hkv + h / g) * p.hd;  // K, then V, of kv head h / g
      const float* q = p.q + i * p.ldq + h * p.hd;
      double mx = -INFINITY;
      for (int64_t t = 0; t < n_keys; ++t) {
        const float* k = ops::gqa_kv_row(p, t) + koff;
        double d = 0.0;
        for (int64_t c = 0; c < p.hd; ++c) d += double(q[c]) * k[c];
        sc[t] = d * p.scale;
        mx = std::max(mx, sc[t]);
      }
      double sum = 0.0;
      for (int64_t t = 0; t < n_keys; ++t) sum += (sc[t] = std::exp(sc[t] - mx));
      float* o = p.out + i * p.ldo + h * p.hd;
      for (int64_t c = 0; c < p.hd; ++c) {
        double acc = 0.0;
        for (int64_t t = 0; t < n_keys; ++t) acc += sc[t] * ops::gqa_kv_row(p, t)[voff + c];
        o[c] = n_keys > 0 ? float(acc / sum) : 0.0f;
      }
    }
  }
}

}  // namespace ds::ref
