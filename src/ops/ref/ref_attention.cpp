// SPDX-License-Identifier: MIT
// Reference attention: MLA in both forms (multi-head prefill and absorbed latent decode) and grouped-query attention
// over a K/V cache; fp64 dot products and softmax sums. Cache rows are read as their stored values (base/kv_rows.h),
// converted exactly.
#include <algorithm>
#include <cmath>
#include <vector>

#include "base/error.h"
#include "base/kv_rows.h"
#include "ops/ref/ref_backend.h"

namespace ds::ref {

namespace {
// The keys query i attends to: every position t <= pos0 + i (and < S), or the indexer's list (ops/params.h).
std::vector<int64_t> keys_of(int64_t i, int64_t S, int64_t pos0, const int32_t* sel, int64_t ldsel, int64_t n_sel) {
  std::vector<int64_t> k;
  if (!sel) {
    for (int64_t t = 0; t < std::min(S, pos0 + i + 1); ++t) k.push_back(t);
    return k;
  }
  for (int64_t j = 0; j < n_sel && sel[i * ldsel + j] >= 0; ++j) {
    const int64_t t = sel[i * ldsel + j];
    DS_CHECK(t < S && t <= pos0 + i, "attention: selected position ", t, " of query ", pos0 + i,
             " is not an earlier position");
    k.push_back(t);
  }
  return k;
}
}  // namespace

void mla_prefill(const ops::MlaPrefillParams& p) {
  std::vector<double> sc(size_t(p.S));
  for (int64_t i = 0; i < p.T; ++i) {
    const std::vector<int64_t> keys = keys_of(i, p.S, p.pos0, p.sel, p.ldsel, p.n_sel);
    const int64_t n_keys = int64_t(keys.size());
    for (int64_t h = 0; h < p.H; ++h) {
      const float* q = p.q + i * p.ldq + h * (p.nope + p.rope);
      double mx = -INFINITY;
      for (int64_t k = 0; k < n_keys; ++k) {
        const int64_t t = keys[size_t(k)];
        const float* kn = p.k_nope + t * p.ldk + h * p.hsk;
        const float* kp = p.k_pe + t * p.ldkpe;
        double d = 0.0;
        for (int64_t c = 0; c < p.nope; ++c) d += double(q[c]) * kn[c];
        for (int64_t c = 0; c < p.rope; ++c) d += double(q[p.nope + c]) * kp[c];
        sc[k] = d * p.scale;
        mx = std::max(mx, sc[k]);
      }
      double sum = 0.0;
      for (int64_t k = 0; k < n_keys; ++k) sum += (sc[k] = std::exp(sc[k] - mx));
      float* o = p.out + i * p.ldo + h * p.dv;
      for (int64_t c = 0; c < p.dv; ++c) {
        double acc = 0.0;
        for (int64_t k = 0; k < n_keys; ++k) acc += sc[k] * p.v[keys[size_t(k)] * p.ldv + h * p.hsv + c];
        o[c] = n_keys > 0 ? float(acc / sum) : 0.0f;
      }
    }
  }
}

namespace {
// Cache rows [0, n) as their fp32 values (base/kv_rows.h), contiguous [n, width].
std::vector<float> read_rows(const ops::KvRows& kv, int64_t n) {
  std::vector<float> r(size_t(std::max<int64_t>(n, 0) * kv.width));
  for (int64_t t = 0; t < n; ++t)
    kv_decode_row(kv.dtype, ops::kv_row(kv, t), kv.width, 0, kv.width, &r[size_t(t * kv.width)]);
  return r;
}
}  // namespace

void kv_write(const ops::KvWriteParams& p) {
  for (int64_t i = 0; i < p.n; ++i) kv_encode_row(p.kv.dtype, p.x + i * p.ldx, p.kv.width, ops::kv_row(p.kv, p.p0 + i));
}

void kv_read(const ops::KvReadParams& p) {
  for (int64_t i = 0; i < p.n; ++i)
    kv_decode_row(p.kv.dtype, ops::kv_row(p.kv, p.p0 + i), p.kv.width, 0, p.kv.width, p.out + i * p.ldo);
}

void mla_decode(const ops::MlaDecodeParams& p) {
  DS_CHECK(p.kv.width >= p.rank + p.rope, "mla_decode: cache rows of ", p.kv.width, " values, expected rank ", p.rank,
           " + rope ", p.rope, " or more");
  std::vector<double> sc(size_t(p.S));
  const int64_t w = p.kv.width;
  const std::vector<float> kv = read_rows(p.kv, p.S);
  for (int64_t i = 0; i < p.T; ++i) {
    const std::vector<int64_t> keys = keys_of(i, p.S, p.pos0, p.sel, p.ldsel, p.n_sel);
    const int64_t n_keys = int64_t(keys.size());
    for (int64_t h = 0; h < p.H; ++h) {
      const float* q = p.q + i * p.ldq + h * (p.rank + p.rope);
      double mx = -INFINITY;
      for (int64_t k = 0; k < n_keys; ++k) {
        const float* row = &kv[size_t(keys[size_t(k)] * w)];
        double d = 0.0;
        for (int64_t c = 0; c < p.rank + p.rope; ++c) d += double(q[c]) * row[c];
        sc[k] = d * p.scale;
        mx = std::max(mx, sc[k]);
      }
      double sum = 0.0;
      for (int64_t k = 0; k < n_keys; ++k) sum += (sc[k] = std::exp(sc[k] - mx));
      float* o = p.out + i * p.ldo + h * p.rank;
      for (int64_t c = 0; c < p.rank; ++c) {
        double acc = 0.0;
        for (int64_t k = 0; k < n_keys; ++k) acc += sc[k] * kv[size_t(keys[size_t(k)] * w + c)];
        o[c] = n_keys > 0 ? float(acc / sum) : 0.0f;
      }
    }
  }
}

void indexer(const ops::IndexerParams& p) {
  DS_CHECK(p.key_off >= 0 && p.key_off + p.d <= p.kv.width, "indexer: key [", p.key_off, ", +", p.d,
           ") outside cache rows of ", p.kv.width, " values");
  DS_CHECK(p.topk > 0, "indexer: topk must be positive");
  const std::vector<float> kv = read_rows(p.kv, p.S);
  std::vector<std::pair<double, int64_t>> sc;
  for (int64_t i = 0; i < p.T; ++i) {
    const int64_t n_keys = std::min(p.S, p.pos0 + i + 1);
    sc.clear();
    for (int64_t t = 0; t < n_keys; ++t) {
      const float* k = &kv[size_t(t * p.kv.width + p.key_off)];
      double s = 0.0;
      for (int64_t h = 0; h < p.nh; ++h) {
        const float* q = p.q + i * p.ldq + h * p.d;
        double d = 0.0;
        for (int64_t c = 0; c < p.d; ++c) d += double(q[c]) * k[c];
        s += double(p.w[i * p.ldw + h]) * double(p.scale) * std::max(d, 0.0);
      }
      sc.push_back({s, t});
    }
    const int64_t n = std::min(p.topk, n_keys);
    // Highest score first; ties to the lower position.
    std::partial_sort(sc.begin(), sc.begin() + n, sc.end(), [](const auto& a, const auto& b) {
      return a.first != b.first ? a.first > b.first : a.second < b.second;
    });
    std::vector<int32_t> pick;
    for (int64_t j = 0; j < n; ++j) pick.push_back(int32_t(sc[size_t(j)].second));
    std::sort(pick.begin(), pick.end());
    int32_t* out = p.sel + i * p.ldsel;
    for (int64_t j = 0; j < p.topk; ++j) out[j] = j < n ? pick[size_t(j)] : -1;
  }
}

void gqa_attention(const ops::GqaAttentionParams& p) {
  DS_CHECK(p.Hkv > 0 && p.H % p.Hkv == 0 && p.kv.width == 2 * p.Hkv * p.hd, "gqa_attention: cache rows of ",
           p.kv.width, " values for H ", p.H, ", Hkv ", p.Hkv, ", head dim ", p.hd);
  std::vector<double> sc(size_t(p.S));
  const int64_t g = p.H / p.Hkv, w = p.kv.width;
  const std::vector<float> kv = read_rows(p.kv, p.S);
  for (int64_t i = 0; i < p.T; ++i) {
    const int64_t n_keys = std::min(p.S, p.pos0 + i + 1);
    for (int64_t h = 0; h < p.H; ++h) {
      const int64_t koff = (h / g) * p.hd, voff = (p.Hkv + h / g) * p.hd;  // K, then V, of kv head h / g
      const float* q = p.q + i * p.ldq + h * p.hd;
      double mx = -INFINITY;
      for (int64_t t = 0; t < n_keys; ++t) {
        const float* k = &kv[size_t(t * w + koff)];
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
        for (int64_t t = 0; t < n_keys; ++t) acc += sc[t] * kv[size_t(t * w + voff + c)];
        o[c] = n_keys > 0 ? float(acc / sum) : 0.0f;
      }
    }
  }
}

}  // namespace ds::ref
