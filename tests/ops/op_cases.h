// SPDX-License-Identifier: MIT
// Op test cases written once for every backend: each function builds its inputs, then hands the runner of the
// backend under test (check_op for the CPU, check_cuda for CUDA) one DevOp per case, which the runner executes on ref
// and on that backend. Cases that compare a backend with itself (paged vs contiguous attention) also take a factory.
#pragma once
#include <functional>
#include <memory>
#include <string>

#include "ops/op_harness.h"

namespace ds::test {

// Budgets: same formula as ref with fp32 rounding-order differences only; fp32 dot products / softmax vs the fp64
// reference; bf16-rounded activations (a last-ulp fp32 difference before rounding moves a value by 2^-8).
inline constexpr Budget kExactish{1e-12, 1e-6};
inline constexpr Budget kF32{1e-10, 2e-5};
inline constexpr Budget kFast{1e-4, 1e-2};

using MakeBackend = std::function<std::unique_ptr<ops::Backend>()>;

struct MmCase {
  DType dt;
  bool scaled;
  int64_t M, N, K;
  bool accumulate = false;
  bool w_kn = false;
  ops::Precision prec = ops::Precision::F32;
  int64_t slice0 = 0;  // > 0: W is rows [slice0, slice0 + rows) of a taller parent (row0 != 0)
};

struct DtCase {
  DType dt;
  bool scaled;
};
inline constexpr DtCase kDtypes[] = {{DType::F32, false}, {DType::BF16, false}, {DType::F16, false},
                                     {DType::F8_E4M3, false}, {DType::F8_E4M3, true}};

// One matmul (strided x and y, padding columns checked untouched); Fast precision is held to `fast`.
void matmul_case(const MmCase& c, const Runner& run, const Budget& fast);

void rms_norm_cases(const Runner& run);
void rope_silu_add_copy_cases(const Runner& run);
void embed_cases(const Runner& run);
// Routing: ids must equal ref's exactly (ties to the lower index, -inf groups); weights within fp32 rounding.
void route_cases(const Runner& run);
void moe_cases(const Runner& run);
void mla_decode_cases(const Runner& run);
// Over a paged cache (rows on shuffled blocks of odd sizes inside a pool with several layers): against ref, and
// bitwise equal to the contiguous layout on the backend made by `make`.
void mla_decode_paged_cases(const Runner& run, const MakeBackend& make);
void mla_prefill_cases(const Runner& run);

}  // namespace ds::test
