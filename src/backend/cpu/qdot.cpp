// SPDX-License-Identifier: MIT
// Level selection for the block-weight dot products (backend/cpu/qdot.h).
#include "backend/cpu/qdot.h"

#include <cstring>

#include "base/dtype.h"
#include "base/quant.h"

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

QGemmFn qgemm_for(DType wt, Isa isa) {
  if (isa >= Isa::Avx512 && has_vnni() && qdot_avx512(wt)) return qgemm_avx512(wt);
  return nullptr;
}

void pack_q8_0_act(const void* a, int64_t a_stride, int M, int64_t nb, uint8_t* q, float* d) {
  const int64_t qs = packed_q_stride(nb), ds = packed_d_stride(nb);
  for (int m = 0; m < M; ++m) {
    const auto* row = static_cast<const uint8_t*>(a) + m * a_stride;
    uint8_t* qr = q + m * qs;
    float* dr = d + m * ds;
    for (int64_t b = 0; b < nb; ++b) {
      BlockQ8_0 blk;
      std::memcpy(&blk, row + b * int64_t(sizeof(BlockQ8_0)), sizeof blk);
      dr[b] = f16_to_f32(blk.d);
      for (int i = 0; i < 32; ++i) qr[b * 32 + i] = uint8_t(blk.q[i]) ^ 0x80u;  // q + 128 as an unsigned byte
    }
    for (int64_t b = nb; b < ds; ++b) {  // the odd row's last pair: zeros (never multiplied)
      dr[b] = 0.0f;
      std::memset(qr + b * 32, 0x80, 32);
    }
  }
}

}  // namespace ds::cpu
