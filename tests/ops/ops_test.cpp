// SPDX-License-Identifier: MIT
// CPU element-wise ops, routing, MLA attention (both forms, contiguous and paged) and MoE vs the reference, at every
// ISA level and thread count. The cases are shared with the CUDA tests (op_cases.h).
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
TEST(CpuOps, Moe) { moe_cases(check_op); }

}  // namespace
}  // namespace ds::test
