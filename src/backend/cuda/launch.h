// SPDX-License-Identifier: MIT
// Host launchers of this folder's kernels: each takes the op's POD params (pointers already in device memory, weights
// already prepared) and a stream, enqueues its kernels and returns without synchronising.
#pragma once
#include <cuda_runtime.h>

#include "ops/params.h"

namespace ds::cuda {

class DeviceMemory;

void launch_rms_norm(const ops::RmsNormParams& p, cudaStream_t s);
void launch_rope(const ops::RopeParams& p, cudaStream_t s);
void launch_silu_mul(const ops::SiluMulParams& p, cudaStream_t s);
void launch_embed(const ops::EmbedParams& p, cudaStream_t s);
void launch_add(const ops::AddParams& p, cudaStream_t s);
void launch_copy(const ops::CopyParams& p, cudaStream_t s);
void launch_matmul(const ops::MatmulParams& p, cudaStream_t s);
void launch_route(const ops::RouteParams& p, cudaStream_t s);
// `experts_dev`: the [E] expert table copied to device memory (ExpertWeights of device views).
void launch_moe(const ops::MoeParams& p, const ops::ExpertWeights* experts_dev, DeviceMemory& mem, cudaStream_t s);
void launch_kv_write(const ops::KvWriteParams& p, cudaStream_t s);
void launch_kv_read(const ops::KvReadParams& p, cudaStream_t s);
void launch_mla_prefill(const ops::MlaPrefillParams& p, cudaStream_t s);
void launch_mla_decode(const ops::MlaDecodeParams& p, cudaStream_t s);
void launch_gqa_attention(const ops::GqaAttentionParams& p, cudaStream_t s);

// Sets a kernel's dynamic shared memory limit when `bytes` exceeds the 48 KiB default (Hopper allows 227 KiB).
void allow_smem(const void* kernel, size_t bytes);

}  // namespace ds::cuda
