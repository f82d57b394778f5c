// SPDX-License-Identifier: MIT
// Op test cases written once for every backend: each function builds its inputs, then hands the runner of the
// backend under test (check_op for the CPU, check_cuda for CUDA) one DevOp per case, which the runner executes on ref
// and on that backend. Cases that compare a backend with itself (paged vs contiguous attention, a row alone vs in a
// chunk) also take a factory.
#pragma once
#include <functional>
#include <memory>
#include <string>

#include "ops/op_harness.h"

namespace ds::test {

// Budgets, from the rounding each op does against ref's fp64 sums over the same inputs:
// - kExactish: the same formula as ref, fp32 rounding-order differences only;
// - kF32: fp32 dot products / softmax. Also Precision::Fast matmuls: every backend rounds x to bf16 exactly as ref
//   does (round to nearest even) and bf16 x bf16 products are exact in fp32, so only the fp32 sum order differs.
//   A kernel that truncated x instead would be off by ~2^-9 per term: NMSE ~1e-6 (BudgetsTest checks that it fails);
//   (measured with that mutation in the CPU driver: NMSE 6.9e-6 to 1e-5, max_rel >= 2.6e-3; `BudgetsTest` keeps it
//   failing);
// - kFastMoe: Fast MoE also rounds its intermediate silu(gate) * up to bf16 for the down projection. Where an
//   intermediate sits within the fp32 sum-order difference (~1e-7) of a bf16 rounding boundary, ref and the backend
//   round it to neighbouring bf16 values: that one term moves by one bf16 ulp (2^-8 relative). One such flip costs
//   NMSE ~ 2^-16 * g_k^2 / sum g^2 (seen: 6.9e-9, max_rel 1.4e-4, on one case of ~20k intermediates); the budget
//   allows a few dozen of them and stays 300x below a truncating kernel (NMSE >= 7.9e-5, max_rel >= 8e-3 measured).
// Set DS_PRINT_NMSE=1 to print every comparison's figures.
inline constexpr Budget kExactish{1e-12, 1e-6};
inline constexpr Budget kF32{1e-10, 2e-5};
inline constexpr Budget kFastMoe{2.5e-7, 1e-3};

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

// One matmul (strided x and y, padding columns checked untouched), F32 and Fast held to kF32.
void matmul_case(const MmCase& c, const Runner& run);

void rms_norm_cases(const Runner& run);
void rope_silu_add_copy_cases(const Runner& run);
void embed_cases(const Runner& run);
// Routing: ids must equal ref's exactly (ties to the lower index, -inf groups); weights within fp32 rounding.
void route_cases(const Runner& run);
void moe_cases(const Runner& run);
// Attention cases take the cache rows' format (base/kv_rows.h: F32, BF16, F8_E4M3): the rows are stored in it and
// every backend computes on their stored values (held to kF32 against ref, which converts them exactly).
void mla_decode_cases(const Runner& run, DType dt = DType::F32);
// Over a paged cache (rows on shuffled blocks of odd sizes inside a pool with several layers): against ref, and
// bitwise equal to the contiguous layout on the backend made by `make`; bf16 / fp8 rows also bitwise equal to f32
// rows holding their stored values.
void mla_decode_paged_cases(const Runner& run, const MakeBackend& make, DType dt = DType::F32);
// kv_write in chunks through a block table, then kv_read: bitwise ref's values, stored bytes equal to
// base/kv_rows.h's encoding, nothing written past a row.
void kv_write_read_cases(const Runner& run, DType dt);
void mla_prefill_cases(const Runner& run);
// DeepSeek-V3.2's sparse attention: layer_norm; the indexer's chosen positions equal ref's exactly (paged rows, keys
// after other values in the row, runs of keys across threads, ties to the lower position, every key equal); both MLA
// forms over selected positions against ref, and a list of every earlier position bitwise the dense result on the
// backend made by `make`.
void sparse_attention_cases(const Runner& run, const MakeBackend& make, DType dt = DType::F32);
// Grouped-query attention (GQA, MQA and MHA head layouts; decode, prefill, appended chunks) against ref and against an
// fp64 oracle written independently in the test.
void gqa_attention_cases(const Runner& run, DType dt = DType::F32);
// Over a paged cache (shuffled blocks of 16 and 5 rows in a pool of several layers): against ref and fp64, and
// bitwise equal to the contiguous layout on the backend made by `make`.
void gqa_attention_paged_cases(const Runner& run, const MakeBackend& make, DType dt = DType::F32);
// On the backend made by `make`, bitwise: each row of a 7-row chunk equals that row decoded alone (T = 1, over the
// cache at its step and over the whole cache), and the chunk split 3 + 4 equals the chunk; contiguous and paged.
void gqa_attention_split_cases(const MakeBackend& make, DType dt = DType::F32);

}  // namespace ds::test
