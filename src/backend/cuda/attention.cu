// SPDX-License-Identifier: MIT
// MLA attention (ops/ref/ref_attention.cpp is the oracle), both forms, and grouped-query attention; fp32 with an
// online softmax (flash-attention style: running max m, running sum l, output rescaled by exp(m_old - m_new) per key
// tile). Cache rows are read in their stored format (f32, bf16, fp8 with per-128 scales: base/kv_rows.h) and
// converted to fp32 as a tile is staged in shared memory; kv_write / kv_read convert rows to and from that format.
//   mla_decode (absorbed): block (query, head group). The group's heads share one pass over the latent cache: each
//     [KT, rank + rope] tile of cache rows is loaded once into shared memory and scored against every head of the
//     group. The group is as many heads as fit in shared memory (all 16 of V2-Lite; V3's 128 in 4 groups).
//   mla_prefill (multi-head): block (16 queries, head); key/value tiles in shared memory, causal mask per query.
//   gqa_attention: block (query, kv head, chunk of its query heads): each K tile, then the V tile of the same keys, is
//     loaded once into shared memory for every query head of the group (all of them where they fit).
#include <algorithm>
#include <cmath>

#include "backend/cuda/check.h"
#include "backend/cuda/common.cuh"
#include "backend/cuda/launch.h"

namespace ds::cuda {

namespace {

constexpr int kThreads = 256, kWarps = kThreads / 32;
constexpr int kDecodeKeys = 16;                  // cache rows per tile (decode)
constexpr int kPrefillQ = 16, kPrefillKeys = 32;  // queries per block, keys per tile (prefill)
constexpr size_t kSmemBudget = 200 * 1024;       // of Hopper's 227 KiB per block

struct DecodeLayout {  // shared-memory carve-up, in floats
  int64_t dq, hg, q, kv, o, sc, stats, total;
  __host__ __device__ DecodeLayout(int64_t rank, int64_t rope, int64_t heads) {
    dq = rank + rope;
    hg = heads;
    q = 0;                             // [hg, dq]
    kv = q + hg * dq;                  // [kDecodeKeys, dq + 1]  (+1: conflict-free column reads)
    o = kv + kDecodeKeys * (dq + 1);   // [hg, rank]
    sc = o + hg * rank;                // [hg, kDecodeKeys] scores, then probabilities
    stats = sc + hg * kDecodeKeys;     // m[hg], l[hg], corr[hg]
    total = stats + 3 * hg;
  }
};

__global__ void __launch_bounds__(kThreads) mla_decode_kernel(ops::MlaDecodeParams p, int64_t group) {
  extern __shared__ float sh[];
  const DecodeLayout L(p.rank, p.rope, group);
  const int64_t i = blockIdx.x, h0 = int64_t(blockIdx.y) * group, nh = std::min(group, p.H - h0);
  const int64_t dq = L.dq, ldk = dq + 1, n_keys = std::min(p.S, p.pos0 + i + 1);
  float *q = sh + L.q, *kv = sh + L.kv, *o = sh + L.o, *sc = sh + L.sc;
  float *m = sh + L.stats, *l = m + L.hg, *corr = l + L.hg;
  const int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31;

  for (int64_t e = tid; e < nh * dq; e += kThreads) q[e] = p.q[i * p.ldq + (h0 + e / dq) * dq + e % dq];
  for (int64_t e = tid; e < nh * p.rank; e += kThreads) o[e] = 0.0f;
  for (int64_t h = tid; h < nh; h += kThreads) { m[h] = -INFINITY; l[h] = 0.0f; }
  __syncthreads();

  for (int64_t t0 = 0; t0 < n_keys; t0 += kDecodeKeys) {
    const int64_t kt = std::min<int64_t>(kDecodeKeys, n_keys - t0);
    for (int64_t j = warp; j < kt; j += kWarps) {  // one warp per cache row: the row lookup once, lanes along it
      const uint8_t* row = kv_row_dev(p.kv, t0 + j);  // converted to fp32 as it is staged (bf16 / fp8 rows)
      for (int64_t c = lane; c < dq; c += 32) kv[j * ldk + c] = kv_value(row, p.kv.dtype, dq, c);
    }
    __syncthreads();
    for (int64_t pair = warp; pair < nh * kt; pair += kWarps) {  // one warp per (head, key) dot product
      const int64_t h = pair / kt, j = pair % kt;
      float d = 0.0f;
      for (int64_t c = lane; c < dq; c += 32) d = fmaf(q[h * dq + c], kv[j * ldk + c], d);
      d = warp_sum(d);
      if (lane == 0) sc[h * kDecodeKeys + j] = d * p.scale;
    }
    __syncthreads();
    for (int64_t h = tid; h < nh; h += kThreads) {  // online softmax, one thread per head
      float mt = m[h];
      for (int64_t j = 0; j < kt; ++j) mt = fmaxf(mt, sc[h * kDecodeKeys + j]);
      float sum = 0.0f;
      for (int64_t j = 0; j < kt; ++j) sum += (sc[h * kDecodeKeys + j] = expf(sc[h * kDecodeKeys + j] - mt));
      corr[h] = expf(m[h] - mt);  // 0 on the first tile (m = -inf); scores are finite
      l[h] = l[h] * corr[h] + sum;
      m[h] = mt;
    }
    __syncthreads();
    for (int64_t e = tid; e < nh * p.rank; e += kThreads) {
      const int64_t h = e / p.rank, c = e % p.rank;
      float acc = o[e] * corr[h];
      for (int64_t j = 0; j < kt; ++j) acc = fmaf(sc[h * kDecodeKeys + j], kv[j * ldk + c], acc);
      o[e] = acc;
    }
    __syncthreads();
  }
  for (int64_t e = tid; e < nh * p.rank; e += kThreads) {
    const int64_t h = e / p.rank;
    p.out[i * p.ldo + (h0 + h) * p.rank + e % p.rank] = n_keys > 0 ? o[e] / l[h] : 0.0f;
  }
}

struct PrefillLayout {  // in floats
  int64_t dqk, ldk, q, k, v, sc, o, stats, total;
  __host__ __device__ PrefillLayout(int64_t nope, int64_t rope, int64_t dv) {
    dqk = nope + rope;
    ldk = dqk + 1;
    q = 0;                              // [kPrefillQ, dqk]
    k = q + kPrefillQ * dqk;            // [kPrefillKeys, dqk + 1]: k_nope | k_pe
    v = k + kPrefillKeys * ldk;         // [kPrefillKeys, dv]
    sc = v + kPrefillKeys * dv;         // [kPrefillQ, kPrefillKeys]
    o = sc + kPrefillQ * kPrefillKeys;  // [kPrefillQ, dv]
    stats = o + kPrefillQ * dv;         // m, l, corr [kPrefillQ]
    total = stats + 3 * kPrefillQ;
  }
};

__global__ void __launch_bounds__(kThreads) mla_prefill_kernel(ops::MlaPrefillParams p) {
  extern __shared__ float sh[];
  const PrefillLayout L(p.nope, p.rope, p.dv);
  const int64_t i0 = int64_t(blockIdx.x) * kPrefillQ, h = blockIdx.y, nq = std::min<int64_t>(kPrefillQ, p.T - i0);
  const int64_t dqk = L.dqk, ldk = L.ldk, dv = p.dv;
  const int64_t keys_end = std::min(p.S, p.pos0 + i0 + nq);  // the last query's causal limit
  float *q = sh + L.q, *k = sh + L.k, *v = sh + L.v, *sc = sh + L.sc, *o = sh + L.o;
  float *m = sh + L.stats, *l = m + kPrefillQ, *corr = l + kPrefillQ;
  const int tid = threadIdx.x;

  for (int64_t e = tid; e < nq * dqk; e += kThreads) q[e] = p.q[(i0 + e / dqk) * p.ldq + h * dqk + e % dqk];
  for (int64_t e = tid; e < nq * dv; e += kThreads) o[e] = 0.0f;
  if (tid < kPrefillQ) { m[tid] = -INFINITY; l[tid] = 0.0f; }
  __syncthreads();

  for (int64_t t0 = 0; t0 < keys_end; t0 += kPrefillKeys) {
    const int64_t kt = std::min<int64_t>(kPrefillKeys, keys_end - t0);
    for (int64_t e = tid; e < kt * dqk; e += kThreads) {
      const int64_t j = e / dqk, c = e % dqk, t = t0 + j;
      k[j * ldk + c] = c < p.nope ? p.k_nope[t * p.ldk + h * p.hsk + c] : p.k_pe[t * p.ldkpe + (c - p.nope)];
    }
    for (int64_t e = tid; e < kt * dv; e += kThreads) {
      const int64_t j = e / dv, t = t0 + j;
      v[e] = p.v[t * p.ldv + h * p.hsv + e % dv];
    }
    __syncthreads();
    for (int64_t pair = tid; pair < nq * kPrefillKeys; pair += kThreads) {
      const int64_t qi = pair / kPrefillKeys, j = pair % kPrefillKeys;
      const int64_t limit = std::min(p.S, p.pos0 + i0 + qi + 1);  // keys t < limit are visible to query i0 + qi
      float s = -INFINITY;
      if (j < kt && t0 + j < limit) {
        float d = 0.0f;
        for (int64_t c = 0; c < dqk; ++c) d = fmaf(q[qi * dqk + c], k[j * ldk + c], d);
        s = d * p.scale;
      }
      sc[pair] = s;
    }
    __syncthreads();
    if (tid < nq) {
      float* s = sc + tid * kPrefillKeys;
      float mt = m[tid];
      for (int64_t j = 0; j < kt; ++j) mt = fmaxf(mt, s[j]);
      float sum = 0.0f;
      if (mt == -INFINITY) {  // nothing visible yet to this query
        corr[tid] = 1.0f;
        for (int64_t j = 0; j < kt; ++j) s[j] = 0.0f;
      } else {
        corr[tid] = expf(m[tid] - mt);
        for (int64_t j = 0; j < kt; ++j) sum += (s[j] = expf(s[j] - mt));  // masked: exp(-inf) = 0
      }
      l[tid] = l[tid] * corr[tid] + sum;
      m[tid] = mt;
    }
    __syncthreads();
    for (int64_t e = tid; e < nq * dv; e += kThreads) {
      const int64_t qi = e / dv, c = e % dv;
      float acc = o[e] * corr[qi];
      for (int64_t j = 0; j < kt; ++j) acc = fmaf(sc[qi * kPrefillKeys + j], v[j * dv + c], acc);
      o[e] = acc;
    }
    __syncthreads();
  }
  for (int64_t e = tid; e < nq * dv; e += kThreads) {
    const int64_t qi = e / dv;
    p.out[(i0 + qi) * p.ldo + h * dv + e % dv] = l[qi] > 0.0f ? o[e] / l[qi] : 0.0f;
  }
}

constexpr int kGqaKeys = 32;  // cache rows per tile

struct GqaLayout {  // in floats
  int64_t q, kv, o, sc, stats, total;
  __host__ __device__ GqaLayout(int64_t hd, int64_t heads) {
    q = 0;                          // [heads, hd]
    kv = q + heads * hd;            // [kGqaKeys, hd + 1]: a K tile, then the V tile of the same keys
    o = kv + kGqaKeys * (hd + 1);   // [heads, hd]
    sc = o + heads * hd;            // [heads, kGqaKeys] scores, then probabilities
    stats = sc + heads * kGqaKeys;  // m[heads], l[heads], corr[heads]
    total = stats + 3 * heads;
  }
};

// blockIdx.y = kv head * chunks + chunk; the chunk is query heads [r0, r0 + group) of that kv head's g.
__global__ void __launch_bounds__(kThreads) gqa_attention_kernel(ops::GqaAttentionParams p, int64_t group,
                                                                   int64_t chunks) {
  extern __shared__ float sh[];
  const GqaLayout L(p.hd, group);
  const int64_t g = p.H / p.Hkv, kvh = blockIdx.y / chunks, r0 = (blockIdx.y % chunks) * group;
  const int64_t i = blockIdx.x, nh = std::min(group, g - r0), h0 = kvh * g + r0;
  const int64_t hd = p.hd, ldk = hd + 1, n_keys = std::min(p.S, p.pos0 + i + 1);
  const int64_t koff = kvh * hd, voff = (p.Hkv + kvh) * hd;
  float *q = sh + L.q, *kv = sh + L.kv, *o = sh + L.o, *sc = sh + L.sc;
  float *m = sh + L.stats, *l = m + group, *corr = l + group;
  const int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31;

  for (int64_t e = tid; e < nh * hd; e += kThreads) q[e] = p.q[i * p.ldq + h0 * hd + e];  // heads hd apart
  for (int64_t e = tid; e < nh * hd; e += kThreads) o[e] = 0.0f;
  for (int64_t h = tid; h < nh; h += kThreads) { m[h] = -INFINITY; l[h] = 0.0f; }
  __syncthreads();

  for (int64_t t0 = 0; t0 < n_keys; t0 += kGqaKeys) {
    const int64_t kt = std::min<int64_t>(kGqaKeys, n_keys - t0);
    for (int64_t j = warp; j < kt; j += kWarps) {  // one warp per cache row
      const uint8_t* row = kv_row_dev(p.kv, t0 + j);
      for (int64_t c = lane; c < hd; c += 32) kv[j * ldk + c] = kv_value(row, p.kv.dtype, p.kv.width, koff + c);
    }
    __syncthreads();
    for (int64_t pair = warp; pair < nh * kt; pair += kWarps) {  // one warp per (head, key) dot product
      const int64_t h = pair / kt, j = pair % kt;
      float d = 0.0f;
      for (int64_t c = lane; c < hd; c += 32) d = fmaf(q[h * hd + c], kv[j * ldk + c], d);
      d = warp_sum(d);
      if (lane == 0) sc[h * kGqaKeys + j] = d * p.scale;
    }
    __syncthreads();
    for (int64_t h = tid; h < nh; h += kThreads) {  // online softmax, one thread per head
      float mt = m[h];
      for (int64_t j = 0; j < kt; ++j) mt = fmaxf(mt, sc[h * kGqaKeys + j]);
      float sum = 0.0f;
      for (int64_t j = 0; j < kt; ++j) sum += (sc[h * kGqaKeys + j] = expf(sc[h * kGqaKeys + j] - mt));
      corr[h] = expf(m[h] - mt);  // 0 on the first tile (m = -inf); scores are finite
      l[h] = l[h] * corr[h] + sum;
      m[h] = mt;
    }
    for (int64_t j = warp; j < kt; j += kWarps) {  // meanwhile the V tile replaces the K tile (scores are done)
      const uint8_t* row = kv_row_dev(p.kv, t0 + j);
      for (int64_t c = lane; c < hd; c += 32) kv[j * ldk + c] = kv_value(row, p.kv.dtype, p.kv.width, voff + c);
    }
    __syncthreads();
    for (int64_t e = tid; e < nh * hd; e += kThreads) {
      const int64_t h = e / hd, c = e % hd;
      float acc = o[e] * corr[h];
      for (int64_t j = 0; j < kt; ++j) acc = fmaf(sc[h * kGqaKeys + j], kv[j * ldk + c], acc);
      o[e] = acc;
    }
    __syncthreads();
  }
  for (int64_t e = tid; e < nh * hd; e += kThreads)
    p.out[i * p.ldo + h0 * hd + e] = n_keys > 0 ? o[e] / l[e / hd] : 0.0f;
}

// KV cache rows: block (row, tile of kKvTileDev values), one thread per value. fp8: the tile's amax over the block,
// scale = amax / 448, code = e4m3(x / scale) rounded to nearest even and saturated (as f32_to_fp8_e4m3 on the host).
__global__ void __launch_bounds__(kKvTileDev) kv_write_kernel(ops::KvWriteParams p) {
  __shared__ float tmp[32];
  const int64_t i = blockIdx.x, c = int64_t(blockIdx.y) * kKvTileDev + threadIdx.x, w = p.kv.width;
  uint8_t* row = kv_row_dev(p.kv, p.p0 + i);
  const bool in = c < w;
  const float x = in ? p.x[i * p.ldx + c] : 0.0f;
  const int64_t so = (w + 3) / 4 * 4;
  switch (p.kv.dtype) {
    case DType::F32:
      if (in) reinterpret_cast<float*>(row)[c] = x;
      break;
    case DType::BF16:
      if (in) reinterpret_cast<__nv_bfloat16*>(row)[c] = __float2bfloat16_rn(x);
      else if (c < (w + 1) / 2 * 2) reinterpret_cast<uint16_t*>(row)[c] = 0;  // padding to the 4-byte word
      break;
    default: {
      float amax = warp_max(fabsf(x));
      __syncthreads();
      if ((threadIdx.x & 31) == 0) tmp[threadIdx.x >> 5] = amax;
      __syncthreads();
      amax = fmaxf(fmaxf(tmp[0], tmp[1]), fmaxf(tmp[2], tmp[3]));  // kKvTileDev / 32 warps
      const float scale = __fdiv_rn(amax, 448.0f);
      if (in) row[c] = scale > 0.0f ? __nv_cvt_float_to_fp8(__fdiv_rn(x, scale), __NV_SATFINITE, __NV_E4M3) : 0;
      else if (c < so) row[c] = 0;
      if (threadIdx.x == 0) reinterpret_cast<float*>(row + so)[blockIdx.y] = scale;
    }
  }
}

__global__ void __launch_bounds__(kKvTileDev) kv_read_kernel(ops::KvReadParams p) {
  const int64_t i = blockIdx.x, c = int64_t(blockIdx.y) * kKvTileDev + threadIdx.x;
  if (c < p.kv.width) p.out[i * p.ldo + c] = kv_value(kv_row_dev(p.kv, p.p0 + i), p.kv.dtype, p.kv.width, c);
}

}  // namespace

void launch_kv_write(const ops::KvWriteParams& p, cudaStream_t s) {
  DS_CHECK(p.n <= 0x7fffffff && ceil_div(p.kv.width, kKvTileDev) <= 65535, "cuda kv_write: too many rows or values");
  kv_write_kernel<<<dim3(unsigned(p.n), unsigned(ceil_div(p.kv.width, kKvTileDev))), kKvTileDev, 0, s>>>(p);
  DS_CU_LAUNCHED();
}

void launch_kv_read(const ops::KvReadParams& p, cudaStream_t s) {
  DS_CHECK(p.n <= 0x7fffffff && ceil_div(p.kv.width, kKvTileDev) <= 65535, "cuda kv_read: too many rows or values");
  kv_read_kernel<<<dim3(unsigned(p.n), unsigned(ceil_div(p.kv.width, kKvTileDev))), kKvTileDev, 0, s>>>(p);
  DS_CU_LAUNCHED();
}

void launch_mla_decode(const ops::MlaDecodeParams& p, cudaStream_t s) {
  // As many heads per block as shared memory holds: they then share every cache tile load.
  const int64_t fixed = DecodeLayout(p.rank, p.rope, 0).total, per_head = DecodeLayout(p.rank, p.rope, 1).total - fixed;
  const int64_t fit = (int64_t(kSmemBudget / sizeof(float)) - fixed) / per_head;
  DS_CHECK(fit >= 1, "cuda mla_decode: rank ", p.rank, " + rope ", p.rope, " does not fit in shared memory");
  const int64_t group = std::min(p.H, fit);
  const size_t smem = size_t(DecodeLayout(p.rank, p.rope, group).total) * sizeof(float);
  DS_CHECK(p.T <= 0x7fffffff && ceil_div(p.H, group) <= 65535, "cuda mla_decode: T or H too large");
  allow_smem(reinterpret_cast<const void*>(&mla_decode_kernel), smem);
  mla_decode_kernel<<<dim3(unsigned(p.T), unsigned(ceil_div(p.H, group))), kThreads, smem, s>>>(p, group);
  DS_CU_LAUNCHED();
}

void launch_mla_prefill(const ops::MlaPrefillParams& p, cudaStream_t s) {
  const size_t smem = size_t(PrefillLayout(p.nope, p.rope, p.dv).total) * sizeof(float);
  DS_CHECK(smem <= kSmemBudget, "cuda mla_prefill: head dims ", p.nope, "+", p.rope, ", v ", p.dv,
           " do not fit in shared memory");
  DS_CHECK(p.H <= 65535, "cuda mla_prefill: too many heads");
  allow_smem(reinterpret_cast<const void*>(&mla_prefill_kernel), smem);
  mla_prefill_kernel<<<dim3(unsigned(ceil_div(p.T, kPrefillQ)), unsigned(p.H)), kThreads, smem, s>>>(p);
  DS_CU_LAUNCHED();
}

void launch_gqa_attention(const ops::GqaAttentionParams& p, cudaStream_t s) {
  // As many of a kv head's query heads per block as shared memory holds: they share every K and V tile load.
  const int64_t g = p.H / p.Hkv, fixed = GqaLayout(p.hd, 0).total, per_head = GqaLayout(p.hd, 1).total - fixed;
  const int64_t fit = (int64_t(kSmemBudget / sizeof(float)) - fixed) / per_head;
  DS_CHECK(fit >= 1, "cuda gqa_attention: head dim ", p.hd, " does not fit in shared memory");
  const int64_t group = std::min(g, fit), chunks = ceil_div(g, group);
  const size_t smem = size_t(GqaLayout(p.hd, group).total) * sizeof(float);
  DS_CHECK(p.T <= 0x7fffffff && p.Hkv * chunks <= 65535, "cuda gqa_attention: T or H too large");
  allow_smem(reinterpret_cast<const void*>(&gqa_attention_kernel), smem);
  gqa_attention_kernel<<<dim3(unsigned(p.T), unsigned(p.Hkv * chunks)), kThreads, smem, s>>>(p, group, chunks);
  DS_CU_LAUNCHED();
}

}  // namespace ds::cuda
