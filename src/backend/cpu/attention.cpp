// SPDX-License-Identifier: MIT
// MLA attention (prefill multi-head form and absorbed latent decode form, dense or over the indexer's positions),
// DeepSeek-V3.2's lightning indexer, grouped-query attention, and the KV cache row ops (kv_write, kv_read).
// Attention work items are (query, group of heads) (prefill: (query, head)), spread over threads; scores with the
// ISA's dot product, fp32 softmax (fp64 sum), output as an ordered fp32 axpy over keys. Each (query, head)'s arithmetic is fixed, so results do not depend on the grouping or the thread count. Cache rows stored
// as bf16 / fp8 are converted exactly to their fp32 values (base/kv_rows.h) once per item, then computed on as fp32.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "backend/cpu/cpu_ops.h"
#include "backend/cpu/kernels.h"
#include "backend/cpu/thread_pool.h"
#include "base/error.h"
#include "base/kv_rows.h"

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

// Cache rows as fp32 for the attention loops: fp32 rows are used in place; bf16 / fp8 rows are converted (exactly,
// base/kv_rows.h) into a per-thread tile of at most kTileRows rows, once for every head that reads them.
constexpr int64_t kTileRows = 16;

// The keys of query i (ops/params.h): positions 0 .. n-1 (dense, causal), or the indexer's ascending list.
struct Keys {
  const int32_t* list = nullptr;
  int64_t n = 0;
  int64_t pos(int64_t k) const { return list ? list[k] : k; }
  // How many keys from k on (at most cap) have consecutive positions: one run of cache rows.
  int64_t consecutive(int64_t k, int64_t cap) const {
    if (!list) return std::min(n - k, cap);
    int64_t m = 1;
    while (m < cap && k + m < n && list[k + m] == list[k] + m) ++m;
    return m;
  }
};

Keys keys_of(int64_t i, int64_t S, int64_t pos0, const int32_t* sel, int64_t ldsel, int64_t n_sel) {
  if (!sel) return {nullptr, std::max<int64_t>(0, std::min(S, pos0 + i + 1))};
  Keys k{sel + i * ldsel, 0};
  while (k.n < n_sel && k.list[k.n] >= 0) ++k.n;
  return k;
}

// Before the parallel loop (no throwing inside it): every selected position is an earlier one, ascending.
void check_sel(const int32_t* sel, int64_t ldsel, int64_t n_sel, int64_t T, int64_t S, int64_t pos0, const char* op) {
  if (!sel) return;
  for (int64_t i = 0; i < T; ++i) {
    const Keys k = keys_of(i, S, pos0, sel, ldsel, n_sel);
    for (int64_t j = 0; j < k.n; ++j)
      DS_CHECK(k.list[j] < std::min(S, pos0 + i + 1) && (j == 0 || k.list[j] > k.list[j - 1]), op,
               ": selected position ", k.list[j], " of query ", pos0 + i, " is not an earlier position in ascending order");
  }
}

class RowSource {
 public:
  RowSource(const ops::KvRows& kv, const Kernels& kern, float* tile) : kv_(kv), kern_(kern), tile_(tile) {}
  // Rows that can be had at once from row t (the same block, at most kTileRows when converted), up to `end`.
  int64_t run(int64_t t, int64_t end) const {
    int64_t m = end - t;
    if (kv_.block_table) m = std::min(m, kv_.block_size - t % kv_.block_size);
    return kv_.dtype == DType::F32 ? m : std::min(m, kTileRows);
  }
  // Values [c0, c0 + n) of rows [t, t + m) (one run): fp32 rows *ld floats apart.
  const float* rows(int64_t t, int64_t m, int64_t c0, int64_t n, int64_t* ld) const {
    const uint8_t* r = ops::kv_row(kv_, t);
    if (kv_.dtype == DType::F32) {
      *ld = kv_.row_bytes / 4;
      return reinterpret_cast<const float*>(r) + c0;
    }
    const int64_t so = kv_scale_offset(kv_.width);
    for (int64_t j = 0; j < m; ++j, r += kv_.row_bytes)
      kern_.convert_cols(kv_.dtype, r, c0, n, reinterpret_cast<const float*>(r + so), kKvTile, tile_ + j * n);
    *ld = n;
    return tile_;
  }

 private:
  const ops::KvRows& kv_;
  const Kernels& kern_;
  float* tile_;
};
}  // namespace

void kv_write(const ops::KvWriteParams& p, int n_threads) {
  const ops::KvRows& kv = p.kv;
  const int nt = threads_for(p.n * kv.width * (kv.dtype == DType::F32 ? 1 : 16), p.n, n_threads);
  parallel_for(p.n, nt,
               [&](int64_t i) { kv_encode_row(kv.dtype, p.x + i * p.ldx, kv.width, ops::kv_row(kv, p.p0 + i)); });
}

void kv_read(const ops::KvReadParams& p, int n_threads) {
  const Kernels& kern = active_kernels();
  const ops::KvRows& kv = p.kv;
  const int nt = threads_for(p.n * kv.width * 4, p.n, n_threads);
  const int64_t so = kv_scale_offset(kv.width);
  parallel_for(p.n, nt, [&](int64_t i) {
    const uint8_t* r = ops::kv_row(kv, p.p0 + i);
    float* out = p.out + i * p.ldo;
    if (kv.dtype == DType::F32) std::memcpy(out, r, size_t(kv.width) * 4);
    else kern.convert_cols(kv.dtype, r, 0, kv.width, reinterpret_cast<const float*>(r + so), kKvTile, out);
  });
}

// One item per (query, group of heads): the group shares one pass over the cache rows (converted once for all of
// them when stored as bf16 / fp8; a group is one head with f32 rows). Per (query, head) the operations and their
// order are fixed (dot per key in key order, softmax, axpy per key in key order, on the rows' fp32 values), so the
// result does not depend on the grouping, the thread count, the cache layout (paged or contiguous) or the other
// queries of the chunk.
void mla_decode(const ops::MlaDecodeParams& p, int n_threads) {
  if (p.T <= 0 || p.H <= 0) return;
  DS_CHECK(p.kv.width >= p.rank + p.rope, "mla_decode: cache rows of ", p.kv.width, " values, expected rank ", p.rank,
           " + rope ", p.rope, " or more");
  check_sel(p.sel, p.ldsel, p.n_sel, p.T, p.S, p.pos0, "mla_decode");
  const Kernels& kern = active_kernels();
  const int64_t dq = p.rank + p.rope, S1 = std::max<int64_t>(p.S, 1);
  const int64_t keys_max = p.sel ? std::min(p.S, p.n_sel) : p.S;
  // Heads per item: f32 rows are read in place, one head per item (streaming the rows per head measured faster than
  // sharing them); bf16 / fp8 rows are converted once per item, so up to 8 heads share each converted tile, as many
  // as still leave an item per thread (1 thread, V2-Lite's 16 heads, 4k keys: 4.5 ms with 8, 10 ms with 1).
  const int64_t per = p.kv.dtype == DType::F32 ? 1 : std::clamp<int64_t>(p.H * p.T / n_threads, 1, 8);
  const int64_t groups = (p.H + per - 1) / per, items = p.T * groups;
  const int nt = threads_for(p.T * p.H * keys_max * dq * 2, items, n_threads);
  // Per thread: scores [per, S1] (head r's at r * S1), the per softmax normalisers, a tile of converted rows.
  std::vector<std::vector<float>> scs(static_cast<size_t>(nt),
                                      std::vector<float>(size_t(per * S1 + per + kTileRows * dq)));
  parallel_dynamic(items, nt, [&](int64_t it, int th) {
    float* sc = scs[size_t(th)].data();
    float* inv = sc + per * S1;
    const RowSource src(p.kv, kern, inv + per);
    const int64_t i = it / groups, h0 = (it % groups) * per, nh = std::min(per, p.H - h0);
    const Keys keys = keys_of(i, p.S, p.pos0, p.sel, p.ldsel, p.n_sel);
    const float* q = p.q + i * p.ldq + h0 * dq;  // the group's heads, dq apart
    float* o = p.out + i * p.ldo + h0 * p.rank;  // rank apart
    std::fill_n(o, nh * p.rank, 0.0f);
    if (keys.n <= 0) return;
    for (int64_t k0 = 0, m = 0; k0 < keys.n; k0 += m) {
      const int64_t t0 = keys.pos(k0);
      m = keys.consecutive(k0, src.run(t0, t0 + keys.n - k0));
      int64_t ld = 0;
      const float* kv = src.rows(t0, m, 0, dq, &ld);
      for (int64_t j = 0; j < m; ++j)
        for (int64_t r = 0; r < nh; ++r) sc[r * S1 + k0 + j] = kern.dot(q + r * dq, kv + j * ld, dq) * p.scale;
    }
    for (int64_t r = 0; r < nh; ++r) inv[r] = softmax_unnorm(sc + r * S1, keys.n);
    for (int64_t k0 = 0, m = 0; k0 < keys.n; k0 += m) {
      const int64_t t0 = keys.pos(k0);
      m = keys.consecutive(k0, src.run(t0, t0 + keys.n - k0));
      int64_t ld = 0;
      const float* kv = src.rows(t0, m, 0, p.rank, &ld);
      for (int64_t j = 0; j < m; ++j)
        for (int64_t r = 0; r < nh; ++r) kern.axpy(sc[r * S1 + k0 + j], kv + j * ld, o + r * p.rank, p.rank);
    }
    for (int64_t r = 0; r < nh; ++r)
      for (int64_t c = 0; c < p.rank; ++c) o[r * p.rank + c] *= inv[r];
  });
}

void mla_prefill(const ops::MlaPrefillParams& p, int n_threads) {
  check_sel(p.sel, p.ldsel, p.n_sel, p.T, p.S, p.pos0, "mla_prefill");
  const Kernels& kern = active_kernels();
  const int64_t items = p.T * p.H, dq = p.nope + p.rope;
  const int64_t keys_max = p.sel ? std::min(p.S, p.n_sel) : p.S;
  const int nt = threads_for(items * keys_max * (dq + p.dv), items, n_threads);
  std::vector<std::vector<float>> scs(static_cast<size_t>(nt), std::vector<float>(size_t(std::max<int64_t>(p.S, 1))));
  parallel_dynamic(items, nt, [&](int64_t it, int th) {
    std::vector<float>& sc = scs[size_t(th)];
    {
      const int64_t i = it / p.H, h = it % p.H;
      const Keys keys = keys_of(i, p.S, p.pos0, p.sel, p.ldsel, p.n_sel);
      const float* q = p.q + i * p.ldq + h * dq;
      float* o = p.out + i * p.ldo + h * p.dv;
      std::fill_n(o, p.dv, 0.0f);
      if (keys.n <= 0) return;
      for (int64_t k = 0; k < keys.n; ++k) {
        const int64_t t = keys.pos(k);
        const float d = kern.dot(q, p.k_nope + t * p.ldk + h * p.hsk, p.nope) +
                        kern.dot(q + p.nope, p.k_pe + t * p.ldkpe, p.rope);
        sc[k] = d * p.scale;
      }
      const float inv = softmax_unnorm(sc.data(), keys.n);
      for (int64_t k = 0; k < keys.n; ++k) kern.axpy(sc[k], p.v + keys.pos(k) * p.ldv + h * p.hsv, o, p.dv);
      for (int64_t c = 0; c < p.dv; ++c) o[c] *= inv;
    }
  });
}

// The lightning indexer (ops/params.h). Scores first: items are (query, run of keys), so a decode step's one query
// spreads over the threads; each key is converted to fp32 once per item and scored by Kernels::index_scores (one
// fp32 chain per key and head, heads added in order). Then, per query, a partial selection of the top min(topk, keys) by (score desc, position asc) and the
// chosen positions sorted ascending. A score depends only on its query and key, so the choice does not depend on the
// chunk, the cache layout or the threads.
void indexer(const ops::IndexerParams& p, int n_threads) {
  if (p.T <= 0) return;
  DS_CHECK(p.key_off >= 0 && p.key_off + p.d <= p.kv.width, "indexer: key [", p.key_off, ", +", p.d,
           ") outside cache rows of ", p.kv.width, " values");
  DS_CHECK(p.topk > 0 && p.nh > 0 && p.d > 0, "indexer: topk, heads and key width must be positive");
  const Kernels& kern = active_kernels();
  const int64_t S1 = std::max<int64_t>(p.S, 1);
  constexpr int64_t kKeysPerItem = 512;
  const int64_t runs = (S1 + kKeysPerItem - 1) / kKeysPerItem;
  // Queries in groups whose scores take at most ~32 MB.
  const int64_t group = std::clamp<int64_t>((int64_t(8) << 20) / S1, 1, p.T);
  std::vector<float> scores(size_t(group * S1));
  std::vector<std::vector<float>> tiles(static_cast<size_t>(n_threads), std::vector<float>(size_t(kTileRows * p.d)));
  std::vector<std::vector<int32_t>> idxs(static_cast<size_t>(n_threads));
  for (int64_t g0 = 0; g0 < p.T; g0 += group) {
    const int64_t G = std::min(group, p.T - g0), items = G * runs;
    const int nt = threads_for(G * p.S * p.nh * p.d * 2, items, n_threads);
    parallel_dynamic(items, nt, [&](int64_t it, int th) {
      const int64_t i = g0 + it / runs, b = (it % runs) * kKeysPerItem;
      const int64_t end = std::min({p.S, p.pos0 + i + 1, b + kKeysPerItem});
      const RowSource src(p.kv, kern, tiles[size_t(th)].data());
      const float* q = p.q + i * p.ldq;
      std::vector<float> ws(static_cast<size_t>(p.nh));
      for (int64_t h = 0; h < p.nh; ++h) ws[size_t(h)] = p.w[i * p.ldw + h] * p.scale;
      float* sc = scores.data() + (i - g0) * S1;
      for (int64_t t0 = b, m = 0; t0 < end; t0 += m) {
        m = src.run(t0, end);
        int64_t ld = 0;
        const float* k = src.rows(t0, m, p.key_off, p.d, &ld);
          kern.index_scores(q, ws.data(), p.nh, p.d, k, ld, m, sc + t0);
      }
    });
    parallel_dynamic(G, int(std::min<int64_t>(G, n_threads)), [&](int64_t gi, int th) {
      const int64_t i = g0 + gi;
      const int64_t n_keys = std::max<int64_t>(0, std::min(p.S, p.pos0 + i + 1));
      const int64_t n = std::min(p.topk, n_keys);
      int32_t* out = p.sel + i * p.ldsel;
      if (n < n_keys) {
        std::vector<int32_t>& idx = idxs[size_t(th)];
        idx.resize(size_t(n_keys));
        for (int64_t t = 0; t < n_keys; ++t) idx[size_t(t)] = int32_t(t);
        const float* sc = scores.data() + gi * S1;
        std::nth_element(idx.begin(), idx.begin() + n, idx.end(), [sc](int32_t a, int32_t b) {
          return sc[a] != sc[b] ? sc[a] > sc[b] : a < b;
        });
        std::sort(idx.begin(), idx.begin() + n);
        std::copy_n(idx.begin(), n, out);
      } else {
        for (int64_t t = 0; t < n; ++t) out[t] = int32_t(t);
      }
      std::fill(out + n, out + p.topk, -1);
    });
  }
}

// One item per (query row i, kv head): the g = H / Hkv query heads of the group share one pass over that kv head's K
// values (each run of rows scored against all g queries while it is in cache, converted once when stored as bf16 /
// fp8), then one pass over its V values. Per (row, head) the operations and their order are fixed (dot per key in key
// order, softmax, axpy per key in key order), so a row's result does not depend on T, pos0, the cache layout (paged
// or contiguous) or the thread count.
void gqa_attention(const ops::GqaAttentionParams& p, int n_threads) {
  if (p.T <= 0 || p.H <= 0) return;
  DS_CHECK(p.Hkv > 0 && p.H % p.Hkv == 0, "gqa_attention: H ", p.H, " is not a multiple of Hkv ", p.Hkv);
  DS_CHECK(p.kv.width == 2 * p.Hkv * p.hd, "gqa_attention: cache rows of ", p.kv.width, " values, expected 2 x ",
           p.Hkv, " x ", p.hd);
  const Kernels& kern = active_kernels();
  const int64_t g = p.H / p.Hkv, items = p.T * p.Hkv, hd = p.hd, S1 = std::max<int64_t>(p.S, 1);
  const int nt = threads_for(p.T * p.H * p.S * hd * 4, items, n_threads);
  // Per thread: scores [g, S1] (head r's at r * S1), the g softmax normalisers, a tile of converted rows.
  std::vector<std::vector<float>> scs(static_cast<size_t>(nt),
                                      std::vector<float>(size_t(g * S1 + g + kTileRows * hd)));
  parallel_dynamic(items, nt, [&](int64_t it, int th) {
    float* sc = scs[size_t(th)].data();
    float* inv = sc + g * S1;
    const RowSource src(p.kv, kern, inv + g);
    const int64_t i = it / p.Hkv, kvh = it % p.Hkv;
    const int64_t n_keys = std::min(p.S, p.pos0 + i + 1);
    const float* q = p.q + i * p.ldq + kvh * g * hd;  // the group's query heads, hd apart
    float* o = p.out + i * p.ldo + kvh * g * hd;
    std::fill_n(o, g * hd, 0.0f);
    if (n_keys <= 0) return;
    const int64_t koff = kvh * hd, voff = (p.Hkv + kvh) * hd;
    for (int64_t t0 = 0, m = 0; t0 < n_keys; t0 += m) {
      m = src.run(t0, n_keys);
      int64_t ld = 0;
      const float* k = src.rows(t0, m, koff, hd, &ld);
      for (int64_t j = 0; j < m; ++j)
        for (int64_t r = 0; r < g; ++r) sc[r * S1 + t0 + j] = kern.dot(q + r * hd, k + j * ld, hd) * p.scale;
    }
    for (int64_t r = 0; r < g; ++r) inv[r] = softmax_unnorm(sc + r * S1, n_keys);
    for (int64_t t0 = 0, m = 0; t0 < n_keys; t0 += m) {
      m = src.run(t0, n_keys);
      int64_t ld = 0;
      const float* v = src.rows(t0, m, voff, hd, &ld);
      for (int64_t j = 0; j < m; ++j)
        for (int64_t r = 0; r < g; ++r) kern.axpy(sc[r * S1 + t0 + j], v + j * ld, o + r * hd, hd);
    }
    for (int64_t r = 0; r < g; ++r)
      for (int64_t c = 0; c < hd; ++c) o[r * hd + c] *= inv[r];
  });
}

}  // namespace ds::cpu
