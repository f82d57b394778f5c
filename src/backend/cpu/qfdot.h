// SPDX-License-Identifier: MIT
// fp32-activation dot products of ggml block weights (Precision::F32, and the products ahead of a router, which the
// model keeps in fp32): one weight row × M fp32 activation rows, the weight decoded once per group of rows,
//
//   out[m * ldo] = Σ_i W[i] · x_m[i]      W = the row's exact dequantised values (base/quant.h to_f32)
//
// within fp32 rounding of the fp64 sum (the scale factoring d·Σ q·x − m·Σ x is allowed: the exact value is the same).
#pragma once
#include <cstdint>

#include "backend/cpu/isa.h"
#include "base/dtype.h"

namespace ds::cpu {

// w: one row of n elements in the weight format; x: M fp32 rows of n elements, row m at x + m * ldx (floats);
// out[m * ldo] receives the dot for row m (overwritten).
using QFDotFn = void (*)(const void* w, const float* x, int64_t ldx, int M, int64_t n, float* out, int64_t ldo);

// The best kernel for block format wt at ISA level `isa`; null where none is written (the matmul driver then
// dequantises the row with to_f32 and takes fp32 dots).
QFDotFn qfdot_for(DType wt, Isa isa);

// Decode (M = 1): R weight rows, row r at w + r * w_stride bytes, with one fp32 row x; out[r] receives row r's dot,
// bitwise what the level's QFDotFn gives for that row (batched decode stays bitwise single-sequence decode). The
// rows run interleaved: x is loaded once for several rows and their chains overlap.
using QFDotRowsFn = void (*)(const void* w, int64_t w_stride, int R, const float* x, int64_t n, float* out);

// The multi-row kernel for wt at level `isa` where qfdot_for picks an AVX-512 kernel (all but Q8_0, which measured
// no faster so); null otherwise (callers then run QFDotFn row by row).
QFDotRowsFn qfdot_rows_for(DType wt, Isa isa);

}  // namespace ds::cpu
