// SPDX-License-Identifier: MIT
// Dense matmul (ops/ref/ref_matmul.cpp is the oracle): weights in their own dtype (f32/bf16/f16/fp8 with block
// scales), fp32 products and sums; Precision::Fast rounds x to bf16 first, as ref does.
//   M <= 8 (decode): one warp per output column (W [N, K]) or one thread per column (W [K, N]); W is read once.
//   M > 8: 64x64 SIMT tiles (matmul_tile.cuh).
#include "backend/cuda/check.h"
#include "backend/cuda/launch.h"
#include "backend/cuda/matmul_tile.cuh"

namespace ds::cuda {

namespace {

constexpr int kMaxSmallM = 8;

// acc[m] += x[m, k] * w for the first p.M (<= 8) rows; Fast rounds x to bf16 as ref does. The loop stops at p.M,
// which is uniform across the launch, so no thread diverges.
__device__ __forceinline__ void fma_rows(const ops::MatmulParams& p, int64_t k, float w, bool fast,
                                         float (&acc)[kMaxSmallM]) {
#pragma unroll
  for (int m = 0; m < kMaxSmallM; ++m) {
    if (m >= p.M) break;
    const float x = p.x[m * p.ldx + k];
    acc[m] = fmaf(fast ? round_bf16(x) : x, w, acc[m]);
  }
}

// y[m, n] for m < M <= 8: warp `n` strides over K (lanes read consecutive weights), then a warp reduction.
template <DType DT>
__global__ void matvec_nk_kernel(ops::MatmulParams p) {
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  const int64_t n = int64_t(blockIdx.x) * (blockDim.x >> 5) + warp;
  if (n >= p.N) return;
  const bool fast = p.precision == ops::Precision::Fast;
  float acc[kMaxSmallM] = {};
  for (int64_t k = lane; k < p.K; k += 32) fma_rows(p, k, wload<DT>(p.w, n, k), fast, acc);
#pragma unroll
  for (int m = 0; m < kMaxSmallM; ++m) {
    if (m >= p.M) break;  // p.M is uniform: the whole warp leaves together
    const float v = warp_sum(acc[m]);
    if (lane == 0) {
      float* y = p.y + m * p.ldy + n;
      *y = p.accumulate ? *y + v : v;
    }
  }
}

// W stored [K, N] (the absorbed-attention products): thread `n` walks K; neighbouring threads read neighbouring W.
template <DType DT>
__global__ void matvec_kn_kernel(ops::MatmulParams p) {
  const int64_t n = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (n >= p.N) return;
  const bool fast = p.precision == ops::Precision::Fast;
  float acc[kMaxSmallM] = {};
  for (int64_t k = 0; k < p.K; ++k) fma_rows(p, k, wload<DT>(p.w, k, n), fast, acc);
  for (int m = 0; m < kMaxSmallM && m < p.M; ++m) {
    float* y = p.y + m * p.ldy + n;
    *y = p.accumulate ? *y + acc[m] : acc[m];
  }
}

template <DType DT, bool KN>
__global__ void __launch_bounds__(kTileThreads) matmul_tiled_kernel(ops::MatmulParams p) {
  __shared__ TileSmem sm;
  mm_tile<DT, KN>(p.x, p.ldx, nullptr, p.M, p.w, p.y, p.ldy, p.N, p.K, int64_t(blockIdx.y) * kTile,
                  int64_t(blockIdx.x) * kTile, p.precision == ops::Precision::Fast, p.accumulate, sm);
}

}  // namespace

void launch_matmul(const ops::MatmulParams& p, cudaStream_t s) {
  DS_CHECK(p.w.rows == (p.w_kn ? p.K : p.N) && p.w.cols == (p.w_kn ? p.N : p.K), "cuda matmul: weight [", p.w.rows,
           ", ", p.w.cols, "] does not match M ", p.M, ", N ", p.N, ", K ", p.K, p.w_kn ? " (w_kn)" : "");
  DS_CHECK(ceil_div(p.M, kTile) <= 65535, "cuda matmul: M ", p.M, " is too large for one launch");
  dispatch_weight(p.w.dtype, "matmul", [&]<DType DT>() {
    if (p.M <= kMaxSmallM && !p.w_kn) {
      matvec_nk_kernel<DT><<<unsigned(ceil_div(p.N, 8)), 256, 0, s>>>(p);
    } else if (p.M <= kMaxSmallM) {
      matvec_kn_kernel<DT><<<unsigned(ceil_div(p.N, 128)), 128, 0, s>>>(p);
    } else {
      const dim3 grid(unsigned(ceil_div(p.N, kTile)), unsigned(ceil_div(p.M, kTile)));
      if (p.w_kn) matmul_tiled_kernel<DT, true><<<grid, kTileThreads, 0, s>>>(p);
      else matmul_tiled_kernel<DT, false><<<grid, kTileThreads, 0, s>>>(p);
    }
  });
  DS_CU_LAUNCHED();
}

}  // namespace ds::cuda
