// SPDX-License-Identifier: MIT
// Reference matmul: exact dequantised weights, fp64 accumulation. Precision::Fast models what fast backends
// compute: x rounded to bf16 first, or, for ggml block weights, x quantised to the format's int8 activation blocks
// (base/quant.h) and taken at the value those blocks hold.
#include <algorithm>
#include <vector>

#include "base/dtype.h"
#include "base/quant.h"
#include "ops/ref/ref_backend.h"

namespace ds::ref {

namespace {
// x[0, K) as Precision::Fast gives it to the products with weight w (stored [N, K]).
void fast_x(const ops::MatmulParams& p, const float* x, float* out) {
  const QuantFormat* f = is_block_dtype(p.w.dtype) && !p.w_kn ? quant_format(p.w.dtype) : nullptr;
  if (!f) {
    for (int64_t k = 0; k < p.K; ++k) out[k] = bf16_to_f32(f32_to_bf16(x[k]));
    return;
  }
  if (f->act == DType::Q8_0) {
    std::vector<BlockQ8_0> b(size_t(p.K / 32));
    quantize_act(DType::Q8_0, x, b.data(), p.K);
    for (int64_t k = 0; k < p.K; ++k) out[k] = f16_to_f32(b[k / 32].d) * float(b[k / 32].q[k % 32]);
  } else {
    std::vector<BlockQ8_K> b(size_t(p.K / 256));
    quantize_act(DType::Q8_K, x, b.data(), p.K);
    for (int64_t k = 0; k < p.K; ++k) out[k] = b[k / 256].d * float(b[k / 256].q[k % 256]);
  }
}
}  // namespace

void matmul(const ops::MatmulParams& p) {
  std::vector<float> xr(size_t(p.M * p.K));
  for (int64_t m = 0; m < p.M; ++m) {
    const float* x = p.x + m * p.ldx;
    if (p.precision == ops::Precision::Fast) fast_x(p, x, xr.data() + m * p.K);
    else std::copy(x, x + p.K, xr.begin() + m * p.K);
  }
  // W as [N, K] rows in fp32, one row at a time (w_kn: W is stored [K, N], dequantised whole first).
  std::vector<float> wkn, row(size_t(p.K));
  if (p.w_kn) {
    wkn.resize(size_t(p.K * p.N));
    for (int64_t k = 0; k < p.K; ++k) p.w.row_f32(k, wkn.data() + k * p.N);
  }
  for (int64_t n = 0; n < p.N; ++n) {
    if (p.w_kn)
      for (int64_t k = 0; k < p.K; ++k) row[size_t(k)] = wkn[size_t(k * p.N + n)];
    else
      p.w.row_f32(n, row.data());
    for (int64_t m = 0; m < p.M; ++m) {
      const float* x = xr.data() + m * p.K;
      double acc = 0.0;
      for (int64_t k = 0; k < p.K; ++k) acc += double(x[k]) * row[size_t(k)];
      float* y = p.y + m * p.ldy + n;
      *y = p.accumulate ? *y + float(acc) : float(acc);
    }
  }
}

}  // namespace ds::ref
