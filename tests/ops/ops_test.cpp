// SPDX-License-Identifier: MIT
// CPU element-wise ops, routing, MLA attention (both forms, contiguous and paged), GQA attention, the KV cache row
// ops (f32, bf16 and fp8 rows) and MoE vs the reference, at every ISA level and thread count. The cases are shared with the CUDA tests (op_cases.h).
#include "ops/op_cases.h"

namespace ds::test {
namespace {

TEST(CpuOps, RmsNorm) { rms_norm_cases(check_op); }
TEST(CpuOps, RopeSiluAddCopy) { rope_silu_add_copy_cases(check_op); }
TEST(CpuOps, Embed) { embed_cases(check_op); }
TEST(CpuOps, Route) { route_cases(check_op); }
TEST(CpuOps, MlaDecode) { mla_decode_cases(check_op); }
// Paging must not change a single bit: paged vs contiguous on the 2-thread CPU backend.
TEST(CpuOps, MlaDecodePaged) {
  mla_decode_paged_cases(check_op, [] { return cpu::make_cpu_backend(2); });
}
TEST(CpuOps, MlaPrefill) { mla_prefill_cases(check_op); }
TEST(CpuOps, SparseAttention) {
  for (DType dt : {DType::F32, DType::BF16, DType::F8_E4M3})
    sparse_attention_cases(check_op, [] { return cpu::make_cpu_backend(2); }, dt);
}
TEST(CpuOps, GqaAttention) { gqa_attention_cases(check_op); }
TEST(CpuOps, GqaAttentionPaged) {
  gqa_attention_paged_cases(check_op, [] { return cpu::make_cpu_backend(2); });
}
// A row's result must not depend on how the rows were batched: at every ISA level, with 1 and 3 threads.
TEST(CpuOps, GqaAttentionRowIndependentOfSplit) {
  for (cpu::Isa isa : isa_levels()) {
    cpu::set_isa_cap(isa);
    for (int nt : {1, 3}) gqa_attention_split_cases([nt] { return cpu::make_cpu_backend(nt); });
  }
  cpu::set_isa_cap(cpu::Isa::Avx512Bf16);
}
TEST(CpuOps, Moe) { moe_cases(check_op); }

// KV cache rows stored as bf16 / fp8 (base/kv_rows.h): the row ops, and attention over such rows.
constexpr DType kKvDtypes[] = {DType::F32, DType::BF16, DType::F8_E4M3};
TEST(CpuOps, KvWriteRead) {
  for (DType dt : kKvDtypes) kv_write_read_cases(check_op, dt);
}
TEST(CpuOps, MlaDecodeLowPrecisionCache) {
  for (DType dt : {DType::BF16, DType::F8_E4M3}) {
    mla_decode_cases(check_op, dt);
    mla_decode_paged_cases(check_op, [] { return cpu::make_cpu_backend(2); }, dt);
  }
}
TEST(CpuOps, GqaAttentionLowPrecisionCache) {
  for (DType dt : {DType::BF16, DType::F8_E4M3}) {
    gqa_attention_cases(check_op, dt);
    gqa_attention_paged_cases(check_op, [] { return cpu::make_cpu_backend(2); }, dt);
  }
}
TEST(CpuOps, GqaAttentionLowPrecisionCacheRowIndependentOfSplit) {
  for (cpu::Isa isa : isa_levels()) {
    cpu::set_isa_cap(isa);
    for (DType dt : {DType::BF16, DType::F8_E4M3})
      for (int nt : {1, 3}) gqa_attention_split_cases([nt] { return cpu::make_cpu_backend(nt); }, dt);
  }
  cpu::set_isa_cap(cpu::Isa::Avx512Bf16);
}

}  // namespace
}  // namespace ds::test
