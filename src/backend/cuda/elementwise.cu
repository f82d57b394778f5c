// SPDX-License-Identifier: MIT
// Element-wise ops (ops/ref/ref_elementwise.cpp is the oracle): rms_norm, rope, silu_mul, embed, add, copy.
// Memory-bound one-pass kernels; grid-stride loops so any M and n fit one launch.
#include <algorithm>

#include "backend/cuda/check.h"
#include "backend/cuda/common.cuh"
#include "backend/cuda/launch.h"

namespace ds::cuda {

namespace {

constexpr int kThreads = 256;

int grid_for(int64_t n) { return int(std::min<int64_t>(ceil_div(n, kThreads), 65535 * 4)); }

// One block per row: sum of squares in fp32 over the block, then y = w * (x * r).
template <DType DT>
__global__ void rms_norm_kernel(ops::RmsNormParams p) {
  __shared__ float tmp[32];
  for (int64_t m = blockIdx.x; m < p.M; m += gridDim.x) {
    const float* x = p.x + m * p.ldx;
    float* y = p.y + m * p.ldy;
    float ss = 0.0f;
    for (int64_t i = threadIdx.x; i < p.n; i += blockDim.x) ss = fmaf(x[i], x[i], ss);
    ss = block_sum(ss, tmp);
    const float r = 1.0f / sqrtf(ss / float(p.n) + p.eps);
    // In place (x == y) is safe: each element is read once above and then once here by the same thread.
    for (int64_t i = threadIdx.x; i < p.n; i += blockDim.x) y[i] = wload<DT>(p.w, 0, i) * (x[i] * r);
    __syncthreads();  // tmp is reused by the next row
  }
}

// One thread per (token, head, pair).
__global__ void rope_kernel(ops::RopeParams p) {
  const int64_t half = p.dim / 2, total = p.M * p.n_heads * half;
  for (int64_t e = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; e < total; e += int64_t(gridDim.x) * blockDim.x) {
    const int64_t j = e % half, h = (e / half) % p.n_heads, m = e / (half * p.n_heads);
    float* x = p.x + m * p.ld + h * p.head_stride;
    const float ang = float(p.pos[m]) * p.inv_freq[j];  // fp32 angle, as ref: the rounding is part of the model
    float s, c;
    sincosf(ang, &s, &c);
    c *= p.attn_factor;
    s *= p.attn_factor;
    const int64_t i0 = p.half ? j : 2 * j, i1 = p.half ? j + half : 2 * j + 1;  // half-split or interleaved pair
    const float a = x[i0], b = x[i1];
    x[i0] = a * c - b * s;
    x[i1] = a * s + b * c;
  }
}

__global__ void silu_mul_kernel(ops::SiluMulParams p) {
  const int64_t total = p.M * p.n;
  for (int64_t e = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; e < total; e += int64_t(gridDim.x) * blockDim.x) {
    const int64_t m = e / p.n, i = e % p.n;
    const float g = p.g[m * p.ldg + i];
    p.out[m * p.ldo + i] = g / (1.0f + expf(-g)) * p.u[m * p.ldu + i];
  }
}

template <DType DT>
__global__ void embed_kernel(ops::EmbedParams p) {
  const int64_t n = p.table.cols, total = p.M * n;
  for (int64_t e = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; e < total; e += int64_t(gridDim.x) * blockDim.x) {
    const int64_t m = e / n, i = e % n;
    p.out[m * p.ldo + i] = wload<DT>(p.table, p.ids[m], i);
  }
}

__global__ void add_kernel(ops::AddParams p) {
  const int64_t total = p.M * p.n;
  for (int64_t e = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; e < total; e += int64_t(gridDim.x) * blockDim.x) {
    const int64_t m = e / p.n, i = e % p.n;
    p.y[m * p.ldy + i] = p.a[m * p.lda + i] + p.b[m * p.ldb + i];
  }
}

}  // namespace

void launch_rms_norm(const ops::RmsNormParams& p, cudaStream_t s) {
  const int grid = int(std::min<int64_t>(p.M, 65535));
  dispatch_weight(p.w.dtype, "rms_norm", [&]<DType DT>() { rms_norm_kernel<DT><<<grid, kThreads, 0, s>>>(p); });
  DS_CU_LAUNCHED();
}

void launch_rope(const ops::RopeParams& p, cudaStream_t s) {
  rope_kernel<<<grid_for(p.M * p.n_heads * (p.dim / 2)), kThreads, 0, s>>>(p);
  DS_CU_LAUNCHED();
}

void launch_silu_mul(const ops::SiluMulParams& p, cudaStream_t s) {
  silu_mul_kernel<<<grid_for(p.M * p.n), kThreads, 0, s>>>(p);
  DS_CU_LAUNCHED();
}

void launch_embed(const ops::EmbedParams& p, cudaStream_t s) {
  dispatch_weight(p.table.dtype, "embed",
                  [&]<DType DT>() { embed_kernel<DT><<<grid_for(p.M * p.table.cols), kThreads, 0, s>>>(p); });
  DS_CU_LAUNCHED();
}

void launch_add(const ops::AddParams& p, cudaStream_t s) {
  add_kernel<<<grid_for(p.M * p.n), kThreads, 0, s>>>(p);
  DS_CU_LAUNCHED();
}

void launch_copy(const ops::CopyParams& p, cudaStream_t s) {
  // Strided rows: one 2-D async copy (rows must not overlap each other; ref's memmove allows overlap within a row,
  // which the model never uses).
  const size_t w = size_t(p.n) * sizeof(float);
  if (p.M == 1) DS_CU(cudaMemcpyAsync(p.dst, p.src, w, cudaMemcpyDeviceToDevice, s));
  else DS_CU(cudaMemcpy2DAsync(p.dst, size_t(p.ldd) * 4, p.src, size_t(p.lds) * 4, w, size_t(p.M),
                               cudaMemcpyDeviceToDevice, s));
}

void allow_smem(const void* kernel, size_t bytes) {
  if (bytes > 48 * 1024) DS_CU(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, int(bytes)));
}

}  // namespace ds::cuda
