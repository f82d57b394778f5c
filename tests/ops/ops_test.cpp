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
// DeepSeek's FP8 quantiser for the V3.2 indexer: power-of-two scales from each block's amax, e4m3 round to nearest
// even, values read back; hand-computed cases on ref and cpu.
TEST(CpuOps, Fp8Round) {
  for (auto make : {std::function<std::unique_ptr<ops::Backend>()>([] { return ref::make_ref_backend(); }),
                    std::function<std::unique_ptr<ops::Backend>()>([] { return cpu::make_cpu_backend(2); })}) {
    auto be = make();
    // Row 0: amax 448 -> scale 1; row 1: the same values x2 -> scale 2; row 2: amax floored at 1e-4 -> scale 2^-22,
    // 1e-6 / 2^-22 = 4.19 -> 4. Blocks of 2 values have their own scales (row 3: amax 3.5, then 448 x 2^-10 exactly:
    // scale 2^-10, 0.01 / 2^-10 = 10.24 -> 10).
    std::vector<float> x = {448, 224, 1, 0.3f, 896, 448, 2, 0.6f, 1e-6f, 0, 0, 0, 3.5f, 0.3f, 0.4375f, 0.01f};
    const std::vector<float> want = {448, 224, 1, 0.3125f, 896, 448, 2, 0.625f,
                                     std::ldexp(1.0f, -20), 0, 0, 0, 3.5f, 0.3125f, 0.4375f, 0.009765625f};
    Mem m{*be, {}};
    float* d = m.put(x);
    be->fp8_round({d, 4, 3, 4, 4, 1.0f});
    be->fp8_round({d + 12, 4, 1, 4, 2, 1.0f});
    EXPECT_EQ(m.get(d, x.size()), want) << be->name();
    // The prescale multiplies first: amax 224 -> scale 2^-1, 0.15 / 2^-1 = 0.3 -> 0.3125
    float* e = m.put(std::vector<float>{448, 0.3f});
    be->fp8_round({e, 2, 1, 2, 128, 0.5f});
    EXPECT_EQ(m.get(e, 2), (std::vector<float>{224, 0.15625f})) << be->name();
  }
}

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
