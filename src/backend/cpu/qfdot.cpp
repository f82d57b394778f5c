// SPDX-License-Identifier: MIT
// Level selection for the fp32-activation block-weight dot products (backend/cpu/qfdot.h). The AVX-512 kernels need
// only F/BW/VL/DQ (Isa::Avx512), the AVX2 ones AVX2 + FMA + F16C (Isa::Avx2); below that the matmul driver
// dequantises rows itself.
#include "backend/cpu/qfdot.h"

namespace ds::cpu {

// The per-level tables (qfdot_avx2.cpp, qfdot_avx512.cpp): null for formats without a kernel.
QFDotFn qfdot_avx2(DType wt);
QFDotFn qfdot_avx512(DType wt);
QFDotRowsFn qfdot_rows_avx512(DType wt);

QFDotFn qfdot_for(DType wt, Isa isa) {
  if (isa >= Isa::Avx512)
    if (QFDotFn f = qfdot_avx512(wt)) return f;
  if (isa >= Isa::Avx2) return qfdot_avx2(wt);
  return nullptr;
}

QFDotRowsFn qfdot_rows_for(DType wt, Isa isa) {
  if (isa >= Isa::Avx512 && qfdot_avx512(wt)) return qfdot_rows_avx512(wt);
  return nullptr;
}

}  // namespace ds::cpu
