// SPDX-License-Identifier: MIT
// Integer dot products of ggml block weights with int8 activation blocks (base/quant.h: the format's `act`, Q8_0 or
// Q8_K), one table per ISA level. A kernel multiplies one weight row with M activation rows, decoding each weight
// block once:
//
//   out[m * ldo] = Σ_b dot(weight block b of the row, activation block b of row m)   for m < M
//
// with each block's dot taken in integers and scaled in fp32 exactly as the format defines (for the K-quants the
// min term uses the activation block sums). The result equals the fp64 dot of the dequantised weight row with the
// dequantised activations up to fp32 rounding (tests/ops/qdot_test.cpp: within 1e-5 * Σ|w_i a_i| + 1e-6).
//
// Activations must come from quantize_act (their int8 quants lie in [-127, 127]: the SIMD kernels multiply signed
// weights as |w| x sign(w)·a, and negating -128 would wrap).
//
// For the grid i-quants (IQ1_S, IQ1_M, IQ2_XXS, IQ2_XS, IQ2_S, IQ3_XXS, IQ3_S) the weights are grid values times
// signs, decoded through the tables of base/quant_tables.h, with odd integer sub-block scales; IQ1_S / IQ1_M add their
// ±1/8 delta through the activation sums, as ggml's vec_dot does.
//
// Levels: scalar, avx2 and avx512 (AVX-512 BW/VL + VNNI; its grid i-quant kernels also use BMI2) each have a kernel
// for every block weight format: Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, IQ4_NL, Q2_K .. Q6_K, IQ4_XS and the grid i-quants.
// The SIMD kernels decode a weight block once per pass of up to 4 (avx2) or 8 (avx512) activation rows.
#pragma once
#include <cstdint>

#include "backend/cpu/isa.h"
#include "base/dtype.h"

namespace ds::cpu {

// w: one row of n elements in the weight format; a: M rows of n / act_block activation blocks, row m at
// a + m * a_stride bytes; out[m * ldo] receives the dot for row m (overwritten).
using QDotFn = void (*)(const void* w, const void* a, int64_t a_stride, int M, int64_t n, float* out, int64_t ldo);

// The kernel for weight format wt at each level; null where that level has none (the driver then takes the next
// lower level; the scalar level covers every block format).
QDotFn qdot_scalar(DType wt);
QDotFn qdot_avx2(DType wt);
QDotFn qdot_avx512(DType wt);  // AVX-512 BW + VNNI (only used where the CPU has avx512vnni)

// The best kernel for wt at ISA level `isa` (and below); null if wt is not a block format.
QDotFn qdot_for(DType wt, Isa isa);

// Decode (M = 1): R weight rows, row r at w + r * w_stride bytes, with one activation row; out[r] receives row r's
// dot, bitwise what the level's QDotFn gives for that row (the same operations in the same order per row: batched
// decode stays bitwise single-sequence decode). The rows run interleaved, which overlaps their chains and reads each
// activation block once for several rows.
using QDotRowsFn = void (*)(const void* w, int64_t w_stride, int R, const void* a, int64_t n, float* out);

// The multi-row kernel for wt at level `isa` where that level's QDotFn has one (the AVX-512 level's K-quants
// Q2_K .. Q6_K and IQ4_XS; its 32-element formats decode through QGemmFn below); null otherwise.
QDotRowsFn qdot_rows_avx512(DType wt);
QDotRowsFn qdot_rows_for(DType wt, Isa isa);

// Any number of activation rows (prefill, and decode where it exists): GEMM tiles of several weight rows by several activation rows, over Q8_0 activation
// blocks packed once per product (pack_q8_0_act): row m's quants as unsigned bytes q + 128 in q + m * q_stride (the
// blocks back to back, rows a whole number of block pairs), its block scales as floats in d + m * d_stride. A tile
// decodes each weight block once for all its activation rows and loads each activation block once for all its
// weight rows; every result is bitwise what the level's QDotFn gives (same integer block sums, same fp32 operations
// in the same order), so a token's result does not depend on how many tokens run with it.
struct QPackedAct {
  const uint8_t* q = nullptr;
  const float* d = nullptr;
  int64_t q_stride = 0;  // bytes
  int64_t d_stride = 0;  // floats
};
// The packed strides for rows of nb blocks, and the packing of M rows of Q8_0 blocks (row m at a + m * a_stride).
inline int64_t packed_q_stride(int64_t nb) { return (nb + 1) / 2 * 64; }
inline int64_t packed_d_stride(int64_t nb) { return (nb + 1) / 2 * 2; }
void pack_q8_0_act(const void* a, int64_t a_stride, int M, int64_t nb, uint8_t* q, float* d);

// y[m * ldy + r] (+)= dot(weight row r, activation row m) for r < R, m < M; weight row r at w + r * w_stride bytes,
// rows of n elements.
using QGemmFn = void (*)(const void* w, int64_t w_stride, int R, const QPackedAct& x, int M, int64_t n, float* y,
                         int64_t ldy, bool accumulate);

// The tile kernel for wt at level `isa` where that level's QDotFn has one (the AVX-512 level's 32-element signed
// formats: Q8_0, Q4_0, Q5_0, IQ4_NL); null otherwise (callers then run QDotFn row by row). With at most 8 activation
// rows it prefetches the weight rows two tiles ahead (decode streams them from memory).
QGemmFn qgemm_avx512(DType wt);
QGemmFn qgemm_for(DType wt, Isa isa);

}  // namespace ds::cpu
