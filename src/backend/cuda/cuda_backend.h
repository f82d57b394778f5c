// SPDX-License-Identifier: MIT
// The CUDA backend: ops::Backend on one NVIDIA GPU. This header is plain C++ (no CUDA types), so runtime/ and the
// tests can include it; everything that needs the CUDA toolkit stays in this folder's .cpp/.cu files.
#pragma once
#include <memory>
#include <string>

#include "ops/backend.h"

namespace ds::cuda {

// Number of usable CUDA devices; 0 when there is no driver or no GPU (never throws). `why` (may be null) receives
// the runtime's reason when the count is 0.
int device_count(std::string* why = nullptr);

// A backend on device `device`: its own stream, device buffers from the stream-ordered allocator, weights uploaded
// once by prepare_weight. Throws ds::Error when the device cannot be used.
std::unique_ptr<ops::Backend> make_cuda_backend(int device = 0);

// Limits of the device measured or derived in this run (for `deepseek bench`).
struct DeviceLimits {
  std::string name;             // e.g. "NVIDIA H100 80GB HBM3"
  int sm_count = 0, cc_major = 0, cc_minor = 0;
  double clock_ghz = 0;         // max SM clock
  double copy_gbs = 0;          // measured device-to-device copy: (bytes read + bytes written) / s
  double bf16_tflops = 0;       // nominal dense tensor-core peak at the max clock (0: unknown architecture)
  double fp8_tflops = 0;        // nominal dense FP8 tensor-core peak (0: none or unknown)
  double fp32_tflops = 0;       // nominal CUDA-core FMA peak
  double mem_gb = 0;            // device memory
};
// Measures the copy bandwidth with two buffers of `bytes` each on `device`. Throws ds::Error without a device.
DeviceLimits probe_device(int device = 0, size_t bytes = size_t(1) << 30);

}  // namespace ds::cuda
