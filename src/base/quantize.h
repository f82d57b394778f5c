// SPDX-License-Identifier: MIT
// Weight quantisers: fp32 rows -> ggml's storage formats, for writing GGUF files (`deepseek quantize`).
//
// Each block format is quantised with ggml's reference algorithm without an importance matrix, the one llama-quantize
// runs when it is given no imatrix (ggml-quants.c `quantize_row_<type>_ref`): round-to-nearest with the block's
// absolute maximum for Q8_0 / Q4_0 / Q5_0, min/max for Q4_1 / Q5_1, the weighted least-squares scale search
// (make_qkx2_quants: weights av|x| + |x|, then 6-bit super-block scales) for Q4_K / Q5_K, and the signed scale search
// (make_qx_quants, rmse_type 1: weights x^2) for Q6_K. The float operations are ggml's, in ggml's order, and the file
// is compiled without fused multiply-adds, so the bytes equal llama-quantize's for the same fp32 input (checked by
// tests/io/quantize_test.cpp against vectors written by ggml itself). F16 and BF16 round to nearest even (F16 with
// subnormals, overflow to inf; BF16 keeps NaN a NaN), as ggml's fp32 -> f16 / bf16 row conversions do.
//
// Block layouts are the ones base/quant.h dequantises (quant_format(t)->to_f32 is the inverse up to rounding).
#pragma once
#include <cstdint>

#include "base/dtype.h"

namespace ds {

// True for the types quantize_row writes: F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q4_K, Q5_K, Q6_K.
bool can_quantize(DType type);

// Writes x[0, n) in `type` to `out` (row_bytes(type, n) bytes; n a multiple of the type's block, checked).
// Throws ds::Error for a type that can_quantize refuses.
void quantize_row(DType type, const float* x, void* out, int64_t n);

}  // namespace ds
