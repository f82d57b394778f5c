// SPDX-License-Identifier: MIT
// Device limits for `deepseek bench`: a device-to-device copy measured with CUDA events, and nominal peaks derived
// from the SM count and max clock. The tensor-core figure is nominal (dense, no sparsity), not measured: SIMT or
// mma.sync loops reach only part of Hopper's wgmma peak, so a measured loop would overstate our % of peak.
#include <cuda_runtime.h>

#include "backend/cuda/check.h"
#include "backend/cuda/cuda_backend.h"

namespace ds::cuda {

namespace {
// Dense FLOP per clock per SM: {bf16 tensor, fp8 tensor, fp32 FMA}. From NVIDIA's published peaks (e.g. H100 SXM:
// 989 TFLOP/s bf16 = 132 SMs x 1.83 GHz x 4096).
struct PerSm { double bf16, fp8, fp32; };
PerSm per_sm(int major, int minor) {
  if (major == 9) return {4096, 8192, 256};                   // Hopper
  if (major == 8 && minor == 0) return {2048, 0, 128};        // A100
  if (major == 10) return {8192, 16384, 256};                 // Blackwell datacenter
  return {0, 0, 0};                                           // unknown: reported as 0, not guessed
}
}  // namespace

DeviceLimits probe_device(int device, size_t bytes) {
  std::string why;
  DS_CHECK(device_count(&why) > device, "no CUDA device ", device, " (", why, ")");
  DS_CU(cudaSetDevice(device));
  cudaDeviceProp prop{};
  DS_CU(cudaGetDeviceProperties(&prop, device));
  int clock_khz = 0;
  DS_CU(cudaDeviceGetAttribute(&clock_khz, cudaDevAttrClockRate, device));
  DeviceLimits d;
  d.name = prop.name;
  d.sm_count = prop.multiProcessorCount;
  d.cc_major = prop.major;
  d.cc_minor = prop.minor;
  d.clock_ghz = clock_khz / 1e6;
  d.mem_gb = double(prop.totalGlobalMem) / 1e9;
  const PerSm ps = per_sm(prop.major, prop.minor);
  const double clk = d.sm_count * d.clock_ghz * 1e9;
  d.bf16_tflops = clk * ps.bf16 / 1e12;
  d.fp8_tflops = clk * ps.fp8 / 1e12;
  d.fp32_tflops = clk * ps.fp32 / 1e12;

  void *a = nullptr, *b = nullptr;
  cudaStream_t s = nullptr;
  cudaEvent_t e0 = nullptr, e1 = nullptr;
  DS_CU(cudaMalloc(&a, bytes));
  DS_CU(cudaMalloc(&b, bytes));
  DS_CU(cudaStreamCreate(&s));
  DS_CU(cudaEventCreate(&e0));
  DS_CU(cudaEventCreate(&e1));
  DS_CU(cudaMemsetAsync(a, 1, bytes, s));
  DS_CU(cudaMemcpyAsync(b, a, bytes, cudaMemcpyDeviceToDevice, s));  // warm-up
  const int reps = 10;
  DS_CU(cudaEventRecord(e0, s));
  for (int r = 0; r < reps; ++r) DS_CU(cudaMemcpyAsync(r % 2 ? a : b, r % 2 ? b : a, bytes, cudaMemcpyDeviceToDevice, s));
  DS_CU(cudaEventRecord(e1, s));
  DS_CU(cudaEventSynchronize(e1));
  float ms = 0;
  DS_CU(cudaEventElapsedTime(&ms, e0, e1));
  d.copy_gbs = 2.0 * double(bytes) * reps / (ms / 1e3) / 1e9;  // each copy reads and writes `bytes`
  cudaEventDestroy(e0);
  cudaEventDestroy(e1);
  cudaStreamDestroy(s);
  cudaFree(a);
  cudaFree(b);
  return d;
}

}  // namespace ds::cuda
