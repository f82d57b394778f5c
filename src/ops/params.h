// SPDX-License-Identifier: MIT
// Backend-neutral op parameters: plain structs of pointers, sizes and strides (counted in elements; KV cache rows
// in bytes).
// All activations are fp32; weights are WeightViews in their checkpoint dtype. Pointers are in the backend's memory.
#pragma once
#include <cstdint>

#include "base/dtype.h"
#include "base/weight.h"

namespace ds::ops {

// F32: weights dequantised exactly, fp32 products and sums (the reference path).
// Fast: the backend may round activations to bf16 for the products (AVX512-BF16 / tensor cores); sums stay fp32.
enum class Precision { F32, Fast };

// y[M, N] (+)= x[M, K] · W^T, with W stored [N, K] (a Linear weight); or, with w_kn, y = x · W with W stored [K, N].
struct MatmulParams {
  const float* x = nullptr;  // [M, K], row stride ldx
  int64_t ldx = 0;
  WeightView w;              // [N, K] (or [K, N] when w_kn)
  bool w_kn = false;
  float* y = nullptr;        // [M, N], row stride ldy
  int64_t ldy = 0;
  int64_t M = 0, N = 0, K = 0;
  bool accumulate = false;   // y += instead of y =
  Precision precision = Precision::F32;
};

// y[M, n] = w[n] * x * rsqrt(mean(x^2) + eps), fp32 math; in place allowed (x == y).
struct RmsNormParams {
  const float* x = nullptr;  // [M, n], row stride ldx
  int64_t ldx = 0;
  WeightView w;              // [n] (bf16 or fp32)
  float* y = nullptr;        // [M, n], row stride ldy
  int64_t ldy = 0;
  int64_t M = 0, n = 0;
  float eps = 1e-6f;
};

// y[M, n] = (x - mean(x)) * rsqrt(var(x) + eps) * w + b, fp32 math (LayerNorm; mean and variance over the row);
// in place allowed (x == y).
struct LayerNormParams {
  const float* x = nullptr;  // [M, n], row stride ldx
  int64_t ldx = 0;
  WeightView w, b;           // [n] (bf16 or fp32)
  float* y = nullptr;        // [M, n], row stride ldy
  int64_t ldy = 0;
  int64_t M = 0, n = 0;
  float eps = 1e-6f;
};

// RoPE in place on the first `dim` values of each head: pair j rotates by angle = float(pos) * inv_freq[j], cos/sin
// multiplied by attn_factor (YaRN's magnitude). Interleaved (DeepSeek's decoupled rope dims, GGUF Llama's permuted
// q/k): pair j is (x[2j], x[2j+1]). Half-split (`half`, HF "rotate_half": Qwen2/Qwen3/Llama as stored in their
// checkpoints): pair j is (x[j], x[j + dim/2]).
//   x0' = x0 * cos * af - x1 * sin * af,  x1' = x1 * cos * af + x0 * sin * af
struct RopeParams {
  float* x = nullptr;          // [M, n_heads, *], token stride ld, head stride head_stride
  int64_t ld = 0, head_stride = 0;
  int64_t M = 0, n_heads = 0, dim = 0;
  const int32_t* pos = nullptr;      // [M]
  const float* inv_freq = nullptr;   // [dim / 2]
  float attn_factor = 1.0f;
  bool half = false;                 // half-split pairs instead of interleaved
};

// out[M, n] = silu(g) * u
struct SiluMulParams {
  const float* g = nullptr; int64_t ldg = 0;  // [M, n]
  const float* u = nullptr; int64_t ldu = 0;  // [M, n]
  float* out = nullptr; int64_t ldo = 0;      // [M, n]
  int64_t M = 0, n = 0;
};

// out[M, n] = table[ids[m], :] in fp32
struct EmbedParams {
  WeightView table;              // [vocab, n]
  const int32_t* ids = nullptr;  // [M]; caller guarantees 0 <= id < vocab
  float* out = nullptr; int64_t ldo = 0;  // [M, n]
  int64_t M = 0;
};

// y[M, n] = a + b (y may alias a)
struct AddParams {
  const float* a = nullptr; int64_t lda = 0;
  const float* b = nullptr; int64_t ldb = 0;
  float* y = nullptr; int64_t ldy = 0;
  int64_t M = 0, n = 0;
};

// dst[M, n] = src[M, n] (strided 2-D copy; used to assemble concatenations)
struct CopyParams {
  const float* src = nullptr; int64_t lds = 0;
  float* dst = nullptr; int64_t ldd = 0;
  int64_t M = 0, n = 0;
};

// Sparse attention (DeepSeek-V3.2): with `sel`, query i attends only to the positions sel[i * ldsel + j], j < n_sel,
// ascending, a -1 ending the list early (positions chosen by the indexer op); without it, to every t <= pos0 + i.
// Keys are taken in list order, so a list of every earlier position gives the dense result bit for bit.

// MLA attention in the multi-head (prefill) form, for one sequence:
// score[h,i,t] = scale * (q_nope[i,h]·k_nope[t,h] + q_pe[i,h]·k_pe[t]),  t <= pos0 + i (causal) or t in sel[i]
// out[i,h] = Σ_t softmax_t(score) v[t,h].  Softmax in fp32.
struct MlaPrefillParams {
  const float* q = nullptr;        // [T, H, nope + rope]: per head q_nope | q_pe; token stride ldq
  int64_t ldq = 0;
  const float* k_nope = nullptr;   // [S, H, nope]: token stride ldk, head stride hsk
  int64_t ldk = 0, hsk = 0;
  const float* k_pe = nullptr;     // [S, rope] shared by all heads: token stride ldkpe
  int64_t ldkpe = 0;
  const float* v = nullptr;        // [S, H, dv]: token stride ldv, head stride hsv
  int64_t ldv = 0, hsv = 0;
  float* out = nullptr;            // [T, H, dv] contiguous per token: token stride ldo
  int64_t ldo = 0;
  int64_t T = 0, S = 0, H = 0, nope = 0, rope = 0, dv = 0;
  int64_t pos0 = 0;                // position of query 0; keys are positions 0..S-1
  float scale = 1.0f;
  const int32_t* sel = nullptr;    // [T, n_sel] row stride ldsel, or null (see above)
  int64_t ldsel = 0, n_sel = 0;
};

// Rows of one layer of a KV cache in their storage format (base/kv_rows.h: F32, BF16 or F8_E4M3): contiguous
// (block_table null: row t at base + t * row_bytes) or paged (row t at base + block_table[t / block_size] *
// block_bytes + (t % block_size) * row_bytes; base = layer l of block 0, see model/kv_pool.h).
struct KvRows {
  uint8_t* base = nullptr;
  DType dtype = DType::F32;
  int64_t width = 0;                     // values per row
  int64_t row_bytes = 0;                 // from one row to the next (>= kv_row_bytes(dtype, width), a multiple of 4)
  const int32_t* block_table = nullptr;  // [ceil(rows / block_size)] block ids, or null (contiguous)
  int64_t block_size = 0;                // rows per block (paged)
  int64_t block_bytes = 0;               // from one block's row 0 to the next block's (paged)
};

// Row t of a KvRows.
inline uint8_t* kv_row(const KvRows& c, int64_t t) {
  if (!c.block_table) return c.base + t * c.row_bytes;
  return c.base + int64_t(c.block_table[t / c.block_size]) * c.block_bytes + (t % c.block_size) * c.row_bytes;
}

// Cache rows [p0, p0 + n) := x[n, width] (row stride ldx), converted to the cache's format (base/kv_rows.h).
struct KvWriteParams {
  const float* x = nullptr;
  int64_t ldx = 0;
  KvRows kv;
  int64_t p0 = 0, n = 0;
};

// out[n, width] (row stride ldo) := cache rows [p0, p0 + n) as fp32: exactly the values attention reads.
struct KvReadParams {
  KvRows kv;
  int64_t p0 = 0, n = 0;
  float* out = nullptr;
  int64_t ldo = 0;
};

// MLA attention in the absorbed (latent) form over the latent cache, for one sequence:
// score[h,i,t] = scale * (q_lat[i,h]·c_kv[t] + q_pe[i,h]·k_pe[t]);  o_lat[i,h] = Σ_t softmax_t(score) c_kv[t]
// Cache rows (c_kv | k_pe first; kv.width >= rank + rope, e.g. with the indexer's key after them) are read in their
// stored format, as their fp32 values. Keys: t <= pos0 + i, or the positions in sel[i] (see above).
struct MlaDecodeParams {
  const float* q = nullptr;        // [T, H, rank + rope]: per head q_lat | q_pe; token stride ldq
  int64_t ldq = 0;
  KvRows kv;                       // [S] rows of rank + rope (or more) values
  float* out = nullptr;            // [T, H, rank]: token stride ldo
  int64_t ldo = 0;
  int64_t T = 0, S = 0, H = 0, rank = 0, rope = 0;
  int64_t pos0 = 0;
  float scale = 1.0f;
  const int32_t* sel = nullptr;    // [T, n_sel] row stride ldsel, or null
  int64_t ldsel = 0, n_sel = 0;
};

// x[M, n] (row stride ld) := each block of `block` values of x · prescale, rounded through e4m3 with a power-of-two
// (ue8m0) scale and read back: s = 2^ceil(log2(max(amax, 1e-4) · (1/448))), x := e4m3(x / s) · s (round to nearest
// even). DeepSeek's FP8 activation quantiser, as its V3.2 indexer applies it to q and k.
struct Fp8RoundParams {
  float* x = nullptr;
  int64_t ld = 0, M = 0, n = 0, block = 128;
  float prescale = 1.0f;
};

// DeepSeek-V3.2's lightning indexer (deepseek_spec.md §2.5), for one sequence: which earlier positions each query
// attends to. With the index key k[t] at values [key_off, key_off + d) of cache row t:
//   I[i,t] = Σ_h (w[i,h] · scale) · relu(q[i,h]·k[t]),  t <= pos0 + i
// sel[i] := the min(topk, pos0 + i + 1) positions with the highest I (ties: the lower position), ascending, then -1
// up to topk. Scores in fp32 (dots as fp32 sums): the choice is discrete, so every backend's result must be
// computed on fp32 values of q, w and the stored keys.
struct IndexerParams {
  const float* q = nullptr;   // [T, nh, d]: token stride ldq, head stride d
  int64_t ldq = 0;
  const float* w = nullptr;   // [T, nh]: token stride ldw
  int64_t ldw = 0;
  KvRows kv;                  // [S] rows holding the keys
  int64_t key_off = 0;        // where the key starts in a row (values)
  int64_t T = 0, S = 0, nh = 0, d = 0, topk = 0;
  int64_t pos0 = 0;
  float scale = 1.0f;
  int32_t* sel = nullptr;     // [T, topk]: token stride ldsel
  int64_t ldsel = 0;
};

// Grouped-query attention for one sequence over its K/V cache (dense architectures: Qwen2, Llama, Qwen3; MHA when
// Hkv == H). Query head h reads kv head h / (H / Hkv):
//   score[h,i,t] = scale * q[i,h]·k[t, h/g],  t <= pos0 + i (causal);  out[i,h] = Σ_t softmax_t(score) v[t, h/g]
// Softmax in fp32. Cache row t holds K of every kv head then V of every kv head: [k_0 .. k_{Hkv-1} | v_0 .. v_{Hkv-1}],
// each hd values (kv.width = 2 * Hkv * hd), read in their stored format as their fp32 values.
// Each query row's result depends only on that row and the cache (not on T, pos0 splits or the thread count), so a
// row decoded alone is bitwise the row computed inside a prompt chunk.
struct GqaAttentionParams {
  const float* q = nullptr;        // [T, H, hd]: token stride ldq, head stride hd
  int64_t ldq = 0;
  KvRows kv;                       // [S] rows of 2 * Hkv * hd values
  float* out = nullptr;            // [T, H, hd]: token stride ldo, head stride hd
  int64_t ldo = 0;
  int64_t T = 0, S = 0, H = 0, Hkv = 0, hd = 0;
  int64_t pos0 = 0;                // position of query 0; keys are positions 0..S-1
  float scale = 1.0f;
};

enum class Scoring { Softmax, Sigmoid };
enum class TopkRule { Greedy, GroupMax, GroupTop2Sum };

// Expert selection (deepseek_spec.md §1.7), all in fp32. Ties go to the lower expert index.
//   s = softmax(logits) | sigmoid(logits);  b = s + bias (bias may be null)
//   GroupMax: group score = max of s in group (V2 group_limited_greedy); GroupTop2Sum: sum of the top-2 b (noaux_tc)
//   keep topk_group groups, others' scores := -inf; ids = top-k of b; weights = s[ids]
//   if norm_topk_prob: w /= (Σw + 1e-20); if scale_after_norm or !norm_topk_prob: w *= routed_scaling_factor
struct RouteParams {
  const float* logits = nullptr;  // [T, E]
  const float* bias = nullptr;    // [E] or null
  int32_t* ids = nullptr;         // [T, k]
  float* weights = nullptr;       // [T, k]
  int64_t T = 0, E = 0, k = 0, n_group = 1, topk_group = 1;
  Scoring scoring = Scoring::Softmax;
  TopkRule rule = TopkRule::Greedy;
  bool norm_topk_prob = false;
  bool scale_after_norm = true;
  float routed_scaling_factor = 1.0f;
};

struct ExpertWeights {
  WeightView gate, up;  // [inter, D]
  WeightView down;      // [D, inter]
};

// y[t] += Σ_j weights[t,j] * down(silu(gate(x[t])) * up(x[t])) over the selected experts ids[t,j].
// Only selected experts are computed; tokens are grouped by expert. An expert whose views are empty (gate.data
// null: held by another process, model/parallel.cpp) contributes nothing.
struct MoeParams {
  const float* x = nullptr; int64_t ldx = 0;       // [T, D]
  const int32_t* ids = nullptr;                    // [T, k]
  const float* weights = nullptr;                  // [T, k]
  const ExpertWeights* experts = nullptr;          // [E] (host array of views)
  float* y = nullptr; int64_t ldy = 0;             // [T, D], accumulated into
  int64_t T = 0, D = 0, k = 0, E = 0, inter = 0;
  Precision precision = Precision::F32;
  // Experts split across processes (model/parallel.cpp), in two calls. With slot_out: y is not touched; the expert
  // output of each pair (t, j) whose expert is held, unweighted, goes to row slot_row[t*k + j] of slot_out [rows, D].
  // With slot_in: no expert is computed; y[t] += weights[t,j] * (row slot_row[t*k + j] of slot_in) for j = 0..k-1,
  // exactly as the one-call op adds its own outputs, so gathering every process's rows gives its bits.
  // slot_row is in backend memory.
  float* slot_out = nullptr;
  const float* slot_in = nullptr;
  const int32_t* slot_row = nullptr;
};

}  // namespace ds::ops
