// SPDX-License-Identifier: MIT
// Internal kernel interface of the CPU backend: one table of plain functions per ISA level. The ISA-specific
// translation units (kernels_{scalar,avx2,avx512}.cpp, matmul_bf16.cpp) fill it; drivers (matmul.cpp, moe.cpp,
// attention.cpp) do the threading and call through the table of the active level.
#pragma once
#include <cstdint>

#include "backend/cpu/isa.h"
#include "base/dtype.h"
#include "ops/params.h"

namespace ds::cpu {

// One matmul y[M, N] (+)= x · W^T, W [N, K] row-major in its checkpoint dtype.
struct MmJob {
  const float* xp = nullptr;     // [M, Kp] fp32, zero-padded to Kp = round_up(K, 32) (F32 path)
  const uint16_t* xb = nullptr;  // [M, Kp] bf16, zero-padded (Fast path)
  int64_t Kp = 0;
  int64_t M = 0, K = 0;
  const void* w = nullptr;       // [N, K] in wt
  DType wt = DType::F32;
  const float* scale = nullptr;  // FP8 block scales (or null); index ((row0 + n) / br) * scale_cols + k / bc
  int64_t scale_cols = 0, row0 = 0;
  int32_t br = 128, bc = 128;
  float* y = nullptr;            // [M, N], row stride ldy
  int64_t ldy = 0;
  bool accumulate = false;
  bool prefill = false;          // convert weight panels once and reuse them over all M (M > kDecodeMaxM)
};

constexpr int64_t kDecodeMaxM = 8;

// Computes rows [n0, n1) of y for all M. `scratch` is a per-thread buffer of at least panel_bytes(n1 - n0, Kp)
// (used only when job.prefill). Results for an element never depend on n0/n1: the reduction order is fixed per (m, n).
using MmRowsFn = void (*)(const MmJob& job, int64_t n0, int64_t n1, void* scratch);
// sum_i a[i] * b[i] (fixed lane order)
using DotFn = float (*)(const float* a, const float* b, int64_t n);
// y[i] += a * x[i]
using AxpyFn = void (*)(float a, const float* x, float* y, int64_t n);
// DeepSeek-V3.2's indexer scores of m keys (rows ldk apart, d values each) for one query: out[j] = Σ_h w[h] ·
// max(q[h] · k[j], 0), q [nh, d] contiguous. Keys go L at a time, transposed, so one vector holds L keys' running
// dots: each dot is one chain over d in order and heads are added in order, whatever m (the same bits for a key
// alone or in any run).
using IndexScoresFn = void (*)(const float* q, const float* w, int64_t nh, int64_t d, const float* k, int64_t ldk,
                               int64_t m, float* out);
// out[0, n) = columns [c0, c0 + n) of a row-major row in dtype wt, exactly in fp32 (FP8: times srow[c / bc]).
using ConvertColsFn = void (*)(DType wt, const void* row, int64_t c0, int64_t n, const float* srow, int64_t bc,
                               float* out);

struct Kernels {
  Isa isa = Isa::Scalar;
  MmRowsFn mm_f32 = nullptr;   // Precision::F32 (and Fast without a bf16 kernel)
  MmRowsFn mm_bf16 = nullptr;  // Precision::Fast with BF16 / F8_E4M3 weights (null below avx512bf16)
  DotFn dot = nullptr;
  AxpyFn axpy = nullptr;
  // WeightLayout::Rows16 weights (BF16 / F8_E4M3), every M: x as for decode (padded rows), outputs 16 rows at a time,
  // one fixed-order chain per output whatever M is. mm_r16_f32: fp32 products; mm_r16_bf16: Precision::Fast bf16
  // products (null below avx512bf16).
  MmRowsFn mm_r16_f32 = nullptr;
  MmRowsFn mm_r16_bf16 = nullptr;
  ConvertColsFn convert_cols = nullptr;
  IndexScoresFn index_scores = nullptr;
};

const Kernels& kernels_scalar();
const Kernels& kernels_avx2();
const Kernels& kernels_avx512();
void mm_bf16_rows_avx512bf16(const MmJob& job, int64_t n0, int64_t n1, void* scratch);
void mm_r16_bf16_avx512bf16(const MmJob& job, int64_t n0, int64_t n1, void* scratch);
void mm_r16_f32_avx512vbmi(const MmJob& job, int64_t n0, int64_t n1, void* scratch);
// The table for active_isa().
const Kernels& active_kernels();

// Matmul driver (matmul.cpp): picks the path, prepares x, splits N across n_threads OpenMP threads.
void matmul(const ops::MatmulParams& p, int n_threads);
// Independent products (none reads another's output): small-M ones run as one parallel pass balanced by weight
// bytes, each bitwise as if run alone; prefill-sized ones run one after the other.
void matmul_batch(const ops::MatmulParams* ps, size_t n, int n_threads);

}  // namespace ds::cpu
