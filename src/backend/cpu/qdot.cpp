// SPDX-License-Identifier: MIT
// Level selection for the block-weight dot products (backend/cpu/qdot.h).
#include "backend/cpu/qdot.h"

namespace ds::cpu {

namespace {
// The AVX-512 kernels use VNNI (vpdpbusd / vpdpwssd) on top of the avx512 level's F/BW/VL/DQ.
bool has_vnni() {
  static const bool v = [] {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512vnni") != 0;
  }();
  return v;
}
}  // namespace

QDotFn qdot_for(DType wt, Isa isa) {
  if (isa >= Isa::Avx512 && has_vnni())
    if (QDotFn f = qdot_avx512(wt)) return f;
  if (isa >= Isa::Avx2)
    if (QDotFn f = qdot_avx2(wt)) return f;
  return qdot_scalar(wt);
}

QDotRowsFn qdot_rows_for(DType wt, Isa isa) {
  // Only where qdot_for picks the AVX-512 kernel whose results the rows kernel reproduces.
  if (isa >= Isa::Avx512 && has_vnni() && qdot_avx512(wt)) return qdot_rows_avx512(wt);
  return nullptr;
}

}  // namespace ds::cpu
