// SPDX-License-Identifier: MIT
// Device helpers shared by this folder's kernels: weight element loads in every supported dtype (with FP8 block
// scales), the bf16 rounding of Precision::Fast, and warp/block reductions.
#pragma once
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_fp8.h>
#include <cuda_runtime.h>

#include <cstdint>

#include "base/error.h"
#include "base/weight.h"
#include "ops/params.h"

namespace ds::cuda {

inline int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

// Element (r, c) of a weight in fp32, exactly as WeightView::at computes it on the host: the stored value widened
// (every bf16/f16/e4m3 value is exact in fp32), times its 128x128 block scale when the view has one.
template <DType DT>
__device__ __forceinline__ float wload(const WeightView& w, int64_t r, int64_t c) {
  const int64_t i = r * w.cols + c;
  float v;
  if constexpr (DT == DType::F32) {
    v = static_cast<const float*>(w.data)[i];
  } else if constexpr (DT == DType::BF16) {
    v = __uint_as_float(uint32_t(static_cast<const uint16_t*>(w.data)[i]) << 16);
  } else if constexpr (DT == DType::F16) {
    v = __half2float(static_cast<const __half*>(w.data)[i]);
  } else {
    static_assert(DT == DType::F8_E4M3, "unsupported weight dtype");
    const __half_raw h = __nv_cvt_fp8_to_halfraw(static_cast<const __nv_fp8_storage_t*>(w.data)[i], __NV_E4M3);
    v = __half2float(__half(h));
  }
  // 32-bit divisions (a 64-bit one is a long emulated sequence on the GPU); every weight dimension is < 2^31.
  if (w.scale)
    v *= w.scale[int64_t(int32_t(w.row0 + r) / w.block_rows) * w.scale_cols + int32_t(c) / w.block_cols];
  return v;
}

// Precision::Fast rounds activations to bf16 (round to nearest even) before the products, as ref does.
__device__ __forceinline__ float round_bf16(float x) { return __bfloat162float(__float2bfloat16_rn(x)); }

__device__ __forceinline__ float warp_sum(float v) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}
__device__ __forceinline__ float warp_max(float v) {
  for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}

// Sum over the block (blockDim.x a multiple of 32, <= 1024); every thread gets the result. `tmp`: 32 floats of shared
// memory; the block must not use `tmp` again before a __syncthreads.
__device__ __forceinline__ float block_sum(float v, float* tmp) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nw = (blockDim.x + 31) >> 5;
  v = warp_sum(v);
  __syncthreads();
  if (lane == 0) tmp[warp] = v;
  __syncthreads();
  v = lane < nw ? tmp[lane] : 0.0f;
  return warp_sum(v);
}

// KV cache rows (base/kv_rows.h, ops::KvRows): row t's address (ops::kv_row on the device), and stored value c of a
// row as fp32, exactly as the host reads it (bf16 widened; fp8: the e4m3 value times its tile's scale, one rounding).
constexpr int64_t kKvTileDev = 128;  // base/kv_rows.h kKvTile
__device__ __forceinline__ uint8_t* kv_row_dev(const ops::KvRows& k, int64_t t) {
  if (!k.block_table) return k.base + t * k.row_bytes;
  return k.base + int64_t(k.block_table[t / k.block_size]) * k.block_bytes + (t % k.block_size) * k.row_bytes;
}
__device__ __forceinline__ float kv_value(const uint8_t* row, DType dt, int64_t width, int64_t c) {
  if (dt == DType::F32) return reinterpret_cast<const float*>(row)[c];
  if (dt == DType::BF16) return __uint_as_float(uint32_t(reinterpret_cast<const uint16_t*>(row)[c]) << 16);
  const float scale = reinterpret_cast<const float*>(row + (width + 3) / 4 * 4)[c / kKvTileDev];
  const __half_raw h = __nv_cvt_fp8_to_halfraw(row[c], __NV_E4M3);
  return __fmul_rn(__half2float(__half(h)), scale);
}

// Calls f.template operator()<DT>() with the weight dtype as a compile-time constant.
template <typename F>
void dispatch_weight(DType dt, const char* op, F&& f) {
  switch (dt) {
    case DType::F32: f.template operator()<DType::F32>(); break;
    case DType::BF16: f.template operator()<DType::BF16>(); break;
    case DType::F16: f.template operator()<DType::F16>(); break;
    case DType::F8_E4M3: f.template operator()<DType::F8_E4M3>(); break;
    default: fail("cuda ", op, ": weight dtype ", dtype_name(dt), " is not supported");
  }
}

}  // namespace ds::cuda
