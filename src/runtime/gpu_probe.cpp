// SPDX-License-Identifier: MIT
// measure_gpu (hw_probe.h): the CUDA device's limits for bench, through the cuda backend's probe.
#include "base/error.h"
#include "runtime/hw_probe.h"
#ifdef DS_HAVE_CUDA
#include "backend/cuda/cuda_backend.h"
#endif

namespace ds::rt {

GpuLimits measure_gpu() {
#ifdef DS_HAVE_CUDA
  const cuda::DeviceLimits d = cuda::probe_device(0);
  GpuLimits g;
  g.name = d.name;
  g.copy_gbs = d.copy_gbs;
  g.bf16_tflops = d.bf16_tflops;
  g.fp8_tflops = d.fp8_tflops;
  g.fp32_tflops = d.fp32_tflops;
  g.mem_gb = d.mem_gb;
  return g;
#else
  fail("this build has no CUDA backend (configure with -DDS_CUDA=ON)");
#endif
}

}  // namespace ds::rt
