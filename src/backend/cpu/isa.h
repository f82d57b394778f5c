// SPDX-License-Identifier: MIT
// Run-time ISA selection for the CPU backend: the best level the CPU supports, capped by DS_CPU_ISA
// (scalar|avx2|avx512|avx512bf16) or by set_isa_cap() (tests run every path on one machine).
#pragma once
#include <cstdint>

namespace ds::cpu {

enum class Isa : int { Scalar = 0, Avx2 = 1, Avx512 = 2, Avx512Bf16 = 3 };

const char* isa_name(Isa isa);
// What the CPU supports (avx2 needs fma+f16c; avx512 needs f/bw/vl/dq; avx512bf16 also needs vbmi and gfni).
Isa detected_isa();
// min(detected, cap); the cap starts from DS_CPU_ISA (unset: no cap).
Isa active_isa();
// Overrides the cap (Isa::Avx512Bf16 = no cap). Not thread-safe against running ops.
void set_isa_cap(Isa cap);

// How many matmuls ran on each ISA level's kernels, fp32 products (bf16 = false) or bf16 products (bf16 = true), in
// this process: lets the tests prove which kernels they exercised instead of trusting the host.
void count_matmul(Isa isa, bool bf16);
uint64_t matmul_count(Isa isa, bool bf16);

}  // namespace ds::cpu
