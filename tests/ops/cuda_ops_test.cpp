// SPDX-License-Identifier: MIT
// CUDA element-wise ops, routing, MoE, MLA attention (both forms, contiguous and paged), GQA attention and the KV
// cache row ops (f32, bf16, fp8 rows) vs the reference, on odd shapes: the cases shared with the CPU tests
// (op_cases.h), run by the CUDA runner.
#include "ops/cuda_harness.h"

namespace ds::test {
namespace {

TEST_F(CudaOps, RmsNorm) { rms_norm_cases(check_cuda); }
TEST_F(CudaOps, RopeSiluAddCopy) { rope_silu_add_copy_cases(check_cuda); }
TEST_F(CudaOps, Embed) { embed_cases(check_cuda); }
TEST_F(CudaOps, Route) { route_cases(check_cuda); }
TEST_F(CudaOps, Moe) { moe_cases(check_cuda); }
TEST_F(CudaOps, MlaDecode) { mla_decode_cases(check_cuda); }
// The per-key arithmetic must not depend on the layout: paged vs contiguous on the GPU, bitwise.
TEST_F(CudaOps, MlaDecodePaged) {
  mla_decode_paged_cases(check_cuda, [] { return cuda::make_cuda_backend(0); });
}
TEST_F(CudaOps, MlaPrefill) { mla_prefill_cases(check_cuda); }
TEST_F(CudaOps, GqaAttention) { gqa_attention_cases(check_cuda); }
TEST_F(CudaOps, GqaAttentionPaged) {
  gqa_attention_paged_cases(check_cuda, [] { return cuda::make_cuda_backend(0); });
}
// Each query row's arithmetic is the same whatever the batch: a row alone is bitwise the row inside a chunk.
TEST_F(CudaOps, GqaAttentionRowIndependentOfSplit) {
  gqa_attention_split_cases([] { return cuda::make_cuda_backend(0); });
}
// KV cache rows stored as bf16 / fp8 (base/kv_rows.h): the row ops (stored bytes equal to the host encoding), and
// attention reading such rows directly.
TEST_F(CudaOps, KvWriteRead) {
  for (DType dt : {DType::F32, DType::BF16, DType::F8_E4M3}) kv_write_read_cases(check_cuda, dt);
}
TEST_F(CudaOps, AttentionLowPrecisionCache) {
  for (DType dt : {DType::BF16, DType::F8_E4M3}) {
    mla_decode_cases(check_cuda, dt);
    mla_decode_paged_cases(check_cuda, [] { return cuda::make_cuda_backend(0); }, dt);
    gqa_attention_cases(check_cuda, dt);
    gqa_attention_paged_cases(check_cuda, [] { return cuda::make_cuda_backend(0); }, dt);
    gqa_attention_split_cases([] { return cuda::make_cuda_backend(0); }, dt);
  }
}

}  // namespace
}  // namespace ds::test
