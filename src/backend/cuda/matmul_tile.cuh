// SPDX-License-Identifier: MIT
// A 64x64 output tile of y = x · W^T (W stored [N, K]) or y = x · W (W stored [K, N], `KN`), fp32 FMA over K in
// steps of 16 staged through shared memory. Shared by the dense matmul (one tile per block) and the grouped MoE
// kernels (a block walks the row tiles of one expert). Correctness-first SIMT code: the tensor-core path (wgmma with
// FP8 block scales) is future work under sm90/.
#pragma once
#include "backend/cuda/common.cuh"

namespace ds::cuda {

constexpr int kTile = 64, kTileK = 16, kTileThreads = 256;

struct TileSmem {
  float x[kTileK][kTile + 1];  // [k, row]  (+1: no bank conflicts on the transposed stores)
  float w[kTileK][kTile + 1];  // [k, col]
};

// Rows [m0, m0 + 64) ∩ [0, M) and columns [n0, n0 + 64) ∩ [0, N) of y. Row i of the product reads x row
// `rows ? rows[i] : i` (a gather, for tokens grouped by expert) and writes y row i. All 256 threads must call it.
template <DType DT, bool KN>
__device__ void mm_tile(const float* __restrict__ x, int64_t ldx, const int32_t* __restrict__ rows, int64_t M,
                        const WeightView& w, float* __restrict__ y, int64_t ldy, int64_t N, int64_t K, int64_t m0,
                        int64_t n0, bool fast, bool accumulate, TileSmem& sm) {
  const int tid = threadIdx.x, tx = tid % 16, ty = tid / 16;
  float acc[4][4] = {};
  for (int64_t k0 = 0; k0 < K; k0 += kTileK) {
    for (int e = tid; e < kTile * kTileK; e += kTileThreads) {
      const int r = e / kTileK, kk = e % kTileK;  // x: 16 consecutive k per row
      const int64_t m = m0 + r, k = k0 + kk;
      float v = 0.0f;
      if (m < M && k < K) {
        v = x[int64_t(rows ? rows[m] : m) * ldx + k];
        if (fast) v = round_bf16(v);
      }
      sm.x[kk][r] = v;
    }
    for (int e = tid; e < kTile * kTileK; e += kTileThreads) {
      // Consecutive threads read consecutive addresses of W in either layout.
      const int c = KN ? e % kTile : e / kTileK, kk = KN ? e / kTile : e % kTileK;
      const int64_t n = n0 + c, k = k0 + kk;
      sm.w[kk][c] = (n < N && k < K) ? (KN ? wload<DT>(w, k, n) : wload<DT>(w, n, k)) : 0.0f;
    }
    __syncthreads();
#pragma unroll
    for (int kk = 0; kk < kTileK; ++kk) {
      float a[4], b[4];
#pragma unroll
      for (int i = 0; i < 4; ++i) a[i] = sm.x[kk][ty + 16 * i];
#pragma unroll
      for (int j = 0; j < 4; ++j) b[j] = sm.w[kk][tx + 16 * j];
#pragma unroll
      for (int i = 0; i < 4; ++i)
#pragma unroll
        for (int j = 0; j < 4; ++j) acc[i][j] = fmaf(a[i], b[j], acc[i][j]);
    }
    __syncthreads();
  }
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    const int64_t m = m0 + ty + 16 * i;
    if (m >= M) continue;
#pragma unroll
    for (int j = 0; j < 4; ++j) {
      const int64_t n = n0 + tx + 16 * j;
      if (n >= N) continue;
      float* out = y + m * ldy + n;
      *out = accumulate ? *out + acc[i][j] : acc[i][j];
    }
  }
}

}  // namespace ds::cuda
