// SPDX-License-Identifier: MIT
#include "base/weight.h"

#include "base/error.h"

namespace ds {

float WeightView::at(int64_t r, int64_t c) const {
  const int64_t i = r * cols + c;
  float v = 0.0f;
  switch (dtype) {
    case DType::F32: v = static_cast<const float*>(data)[i]; break;
    case DType::BF16: v = bf16_to_f32(static_cast<const uint16_t*>(data)[i]); break;
    case DType::F16: v = f16_to_f32(static_cast<const uint16_t*>(data)[i]); break;
    case DType::F8_E4M3: v = fp8_e4m3_to_f32(static_cast<const uint8_t*>(data)[i]); break;
    default: fail("weight dtype ", dtype_name(dtype), " is not supported for compute");
  }
  if (scale) v *= scale[((row0 + r) / block_rows) * scale_cols + c / block_cols];
  return v;
}

}  // namespace ds
