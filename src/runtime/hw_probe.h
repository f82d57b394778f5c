// SPDX-License-Identifier: MIT
// Hardware limits measured in the same run as a benchmark: host memory bandwidth (read, copy) and the compute peak
// of the vector units (fp32 FMA and AVX512-BF16 dot products), so results can be stated as % of the limit.
#pragma once
#include <string>
#include <utility>
#include <vector>

namespace ds::rt {

struct MemBandwidth {
  double read_gbs = 0;  // bytes read / s
  double copy_gbs = 0;  // (bytes read + bytes written) / s
};
MemBandwidth measure_host_bandwidth(int threads, size_t bytes = size_t(2) << 30);
// Seconds to read every byte of `ranges` once, each range split over `threads` threads (the probe's read loop), run on
// the CPU backend's thread pool.
double read_seconds(const std::vector<std::pair<const void*, size_t>>& ranges, int threads);

struct ComputePeak {
  double fp32_tflops = 0;
  double bf16_tflops = 0;  // 0 when the CPU has no AVX512-BF16
};
ComputePeak measure_cpu_peak(int threads);

// Limits of CUDA device 0 (bench --backend cuda): a device-to-device copy measured now ((bytes read + written) / s)
// and nominal dense peaks from the SM count and clock. Throws ds::Error without a CUDA build or device.
struct GpuLimits {
  std::string name;
  double copy_gbs = 0;
  double bf16_tflops = 0, fp8_tflops = 0, fp32_tflops = 0;  // 0: unknown for this architecture
  double mem_gb = 0;
};
GpuLimits measure_gpu();

// Resident set size of this process now and at its peak, in bytes (from /proc/self/status; 0 if unknown).
struct Resident {
  double now = 0, peak = 0;
};
Resident resident_memory();

std::string cpu_name();
int hardware_threads();
std::string build_commit();

}  // namespace ds::rt
