// SPDX-License-Identifier: MIT
// One descriptor per weight format: how many elements a block holds, how many bytes it takes, how a run of blocks
// dequantises to fp32, and which int8 activation blocks its integer dot product takes. Plain element types (F32,
// F16, BF16, F8_E4M3) are formats with a block of one element; ggml's block formats (Q8_0, Q4_K, IQ2_XXS, ...) store
// a row of `cols` elements as cols / block blocks laid end to end, so a row is `row_bytes(type, cols)` bytes and a
// weight's rows follow each other at that stride.
//
// Dequantisation is bit-exact with ggml's definition of each format (ggml-quants.c `dequantize_row_*`, mirrored by
// gguf-py's numpy `quants.py`, from which tests/fixtures/quant's vectors are made). Activation quantisation
// (quantize_act) is ggml's reference quantiser for Q8_0 / Q8_K (`quantize_row_q8_0_ref`, `quantize_row_q8_K_ref`),
// so what Precision::Fast computes on block weights is defined here, once, for ref and every backend.
#pragma once
#include <cstdint>

#include "base/dtype.h"

namespace ds {

// out[0, n) = the first n elements stored at `blocks` (n a multiple of the format's block), in fp32.
using ToF32Fn = void (*)(const void* blocks, float* out, int64_t n);

struct QuantFormat {
  DType type = DType::F32;
  int32_t block = 1;        // elements per block
  int32_t block_bytes = 4;  // bytes per block
  ToF32Fn to_f32 = nullptr;
  // Activation blocks the format's integer dot product multiplies with (Q8_0 for 32-element formats, Q8_K for
  // 256-element ones); F32 for plain element types (they multiply fp32 or bf16 activations).
  DType act = DType::F32;
};

// The descriptor of a weight format; null for types that are not weight formats (I64, BOOL, Q8_1, ...).
const QuantFormat* quant_format(DType t);
// Bytes of a row of `cols` elements (cols a multiple of the block; checked), for weight formats and Q8_K.
int64_t row_bytes(DType t, int64_t cols);

// Activation blocks (ggml's layouts): Q8_0 = {f16 d; int8 q[32]} (34 bytes), Q8_K = {f32 d; int8 q[256];
// int16 bsums[16]} (292 bytes, bsums = sums of each 16 q's).
struct BlockQ8_0 { uint16_t d; int8_t q[32]; };
struct BlockQ8_K { float d; int8_t q[256]; int16_t bsums[16]; };
static_assert(sizeof(BlockQ8_0) == 34 && sizeof(BlockQ8_K) == 292);

// Quantises x[0, n) (n a multiple of the act format's block) into `act` blocks (Q8_0 or Q8_K), as ggml's reference
// quantisers do.
void quantize_act(DType act, const float* x, void* out, int64_t n);

}  // namespace ds
