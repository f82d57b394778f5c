// SPDX-License-Identifier: MIT
// Reference matmul: exact dequantised weights, fp64 accumulation. Precision::Fast rounds x to bf16 first,
// modelling what fast backends compute.
#include <vector>

#include "base/dtype.h"
#include "ops/ref/ref_backend.h"

namespace ds::ref {

void matmul(const ops::MatmulParams& p) {
  std::vector<float> xr(size_t(p.K));
  for (int64_t m = 0; m < p.M; ++m) {
    const float* x = p.x + m * p.ldx;
    for (int64_t k = 0; k < p.K; ++k)
      xr[k] = p.precision == ops::Precision::Fast ? bf16_to_f32(f32_to_bf16(x[k])) : x[k];
    for (int64_t n = 0; n < p.N; ++n) {
      double acc = 0.0;
      for (int64_t k = 0; k < p.K; ++k) acc += double(xr[k]) * (p.w_kn ? p.w.at(k, n) : p.w.at(n, k));
      float* y = p.y + m * p.ldy + n;
      *y = p.accumulate ? *y + float(acc) : float(acc);
    }
  }
}

}  // namespace ds::ref
