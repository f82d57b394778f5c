// SPDX-License-Identifier: MIT
#include "runtime/hw_probe.h"

#include <immintrin.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <thread>
#include <vector>

#include "backend/cpu/thread_pool.h"
#include "base/error.h"
#include "base/huge_pages.h"
#include "base/timer.h"

#ifndef DS_GIT_COMMIT
#define DS_GIT_COMMIT "unknown"
#endif

namespace ds::rt {

namespace {

// 512-bit loads into eight independent sums: the most a streaming reader can get (what decode kernels do).
__attribute__((target("avx512f"))) uint64_t read_sum512(const uint8_t* p, size_t n) {
  __m512i a[8];
  for (auto& x : a) x = _mm512_setzero_si512();
  for (size_t i = 0; i + 512 <= n; i += 512)
    for (int j = 0; j < 8; ++j) a[j] = _mm512_add_epi64(a[j], _mm512_load_si512(p + i + 64 * j));
  for (int j = 1; j < 8; ++j) a[0] = _mm512_add_epi64(a[0], a[j]);
  alignas(64) uint64_t v[8];
  _mm512_store_si512(v, a[0]);
  return v[0] + v[1] + v[2] + v[3] + v[4] + v[5] + v[6] + v[7];
}

__attribute__((target("avx2"))) uint64_t read_sum(const uint8_t* p, size_t n) {
  __m256i a0 = _mm256_setzero_si256(), a1 = a0, a2 = a0, a3 = a0;
  for (size_t i = 0; i + 128 <= n; i += 128) {
    a0 = _mm256_add_epi64(a0, _mm256_load_si256(reinterpret_cast<const __m256i*>(p + i)));
    a1 = _mm256_add_epi64(a1, _mm256_load_si256(reinterpret_cast<const __m256i*>(p + i + 32)));
    a2 = _mm256_add_epi64(a2, _mm256_load_si256(reinterpret_cast<const __m256i*>(p + i + 64)));
    a3 = _mm256_add_epi64(a3, _mm256_load_si256(reinterpret_cast<const __m256i*>(p + i + 96)));
  }
  __m256i s = _mm256_add_epi64(_mm256_add_epi64(a0, a1), _mm256_add_epi64(a2, a3));
  alignas(32) uint64_t v[4];
  _mm256_store_si256(reinterpret_cast<__m256i*>(v), s);
  return v[0] + v[1] + v[2] + v[3];
}

template <typename F>
double best_of(int reps, F&& f) {
  double best = 1e30;
  for (int r = 0; r < reps; ++r) {
    Timer t;
    f();
    best = std::min(best, t.seconds());
  }
  return best;
}

template <typename F>
void run_threads(int n, F&& f) {
  std::vector<std::thread> th;
  for (int i = 0; i < n; ++i) th.emplace_back(f, i);
  for (auto& t : th) t.join();
}

// Sum of every lane of the accumulators (keeps the loops' results live; GCC 12's reduce intrinsic warns).
template <size_t N>
__attribute__((target("avx512f"))) double sum_lanes(const __m512 (&a)[N]) {
  alignas(64) float v[16];
  float s = 0;
  for (const auto& x : a) {
    _mm512_store_ps(v, x);
    for (float f : v) s += f;
  }
  return s;
}

// kChains independent chains with distinct starting values: identical chains were once folded by the compiler into
// one, and the probe then counted eight instructions per executed one (reporting twice the real fp32 peak); enough
// chains to cover the instruction latency at the cores' issue rate.
constexpr int kChains = 24;

__attribute__((target("avx512f"))) double fma_loop(long iters) {
  const __m512 b = _mm512_set1_ps(1.0000001f), c = _mm512_set1_ps(1e-7f);
  __m512 a[kChains];
  for (int j = 0; j < kChains; ++j) a[j] = _mm512_set1_ps(float(j + 1));
  for (long i = 0; i < iters; ++i) {
#pragma GCC unroll 24
    for (int j = 0; j < kChains; ++j) a[j] = _mm512_fmadd_ps(a[j], b, c);  // all in registers
  }
  return sum_lanes(a);
}

__attribute__((target("avx512f,avx512bf16"))) double bf16_loop(long iters) {
  const __m512bh b = (__m512bh)_mm512_set1_epi16(0x3f80), c = (__m512bh)_mm512_set1_epi16(0x3380);
  __m512 a[kChains];
  for (int j = 0; j < kChains; ++j) a[j] = _mm512_set1_ps(float(j));
  for (long i = 0; i < iters; ++i) {
#pragma GCC unroll 24
    for (int j = 0; j < kChains; ++j) a[j] = _mm512_dpbf16_ps(a[j], b, c);
  }
  return sum_lanes(a);
}

// flops per call of the loop body: 8 vectors x lanes x 2 (multiply + add)
double measure_peak(int threads, double (*loop)(long), double flops_per_iter) {
  const long iters = 20'000'000;
  volatile double sink = 0;
  const double t = best_of(3, [&] { run_threads(threads, [&](int) { sink = sink + loop(iters); }); });
  return double(threads) * double(iters) * flops_per_iter / t / 1e12;
}

}  // namespace

int hardware_threads() { return std::max(1u, std::thread::hardware_concurrency()); }

MemBandwidth measure_host_bandwidth(int threads, size_t bytes) {
  threads = threads > 0 ? threads : hardware_threads();
  bytes = bytes / (size_t(threads) * 512) * size_t(threads) * 512;
  // Huge-page memory, as the weights decode streams: the reference is the best a reader can get here.
  HugePageBuffer src_buf, dst_buf;
  MemBandwidth bw;
  try {
    src_buf = HugePageBuffer(bytes, "bandwidth probe");
    dst_buf = HugePageBuffer(bytes, "bandwidth probe");
  } catch (const Error&) {
    return bw;
  }
  uint8_t* src = src_buf.data();
  uint8_t* dst = dst_buf.data();
  __builtin_cpu_init();
  const bool avx512 = __builtin_cpu_supports("avx512f");
  const size_t part = bytes / size_t(threads);
  run_threads(threads, [&](int i) {  // first touch by the thread that will read it
    std::memset(src + size_t(i) * part, 1, part);
    std::memset(dst + size_t(i) * part, 0, part);
  });
  volatile uint64_t sink = 0;
  const double tr = best_of(5, [&] {
    run_threads(threads, [&](int i) {
      sink = sink + (avx512 ? read_sum512 : read_sum)(src + size_t(i) * part, part);
    });
  });
  const double tc = best_of(5, [&] { run_threads(threads, [&](int i) { std::memcpy(dst + size_t(i) * part, src + size_t(i) * part, part); }); });
  bw.read_gbs = double(bytes) / tr / 1e9;
  bw.copy_gbs = 2.0 * double(bytes) / tc / 1e9;
  return bw;
}

double read_seconds(const std::vector<std::pair<const void*, size_t>>& ranges, int threads) {
  threads = threads > 0 ? threads : hardware_threads();
  __builtin_cpu_init();
  const bool avx512 = __builtin_cpu_supports("avx512f");
  volatile uint64_t sink = 0;
  Timer t;
  // On the CPU backend's own threads: extra threads would compete with its workers (which spin between ops).
  cpu::parallel(threads, [&](int i) {
    uint64_t s = 0;
    for (const auto& [p, n] : ranges) {
      // This thread's part, aligned to the 512-byte steps of the read loops (the unaligned ends are skipped).
      const uintptr_t a = (reinterpret_cast<uintptr_t>(p) + 63) / 64 * 64, e = reinterpret_cast<uintptr_t>(p) + n;
      if (e <= a) continue;
      const size_t len = (e - a) / 512 * 512, part = len / size_t(threads) / 512 * 512;
      const size_t b = part * size_t(i), m = i + 1 == threads ? len - b : part;
      s += (avx512 ? read_sum512 : read_sum)(reinterpret_cast<const uint8_t*>(a) + b, m);
    }
    sink = sink + s;
  });
  return t.seconds();
}

ComputePeak measure_cpu_peak(int threads) {
  threads = threads > 0 ? threads : hardware_threads();
  ComputePeak p;
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f")) p.fp32_tflops = measure_peak(threads, fma_loop, kChains * 16.0 * 2);
  if (__builtin_cpu_supports("avx512bf16")) p.bf16_tflops = measure_peak(threads, bf16_loop, kChains * 32.0 * 2);
  return p;
}

Resident resident_memory() {
  Resident r;
  std::ifstream f("/proc/self/status");
  std::string line;
  while (std::getline(f, line)) {
    if (line.rfind("VmRSS:", 0) == 0) r.now = std::stod(line.substr(6)) * 1024.0;
    if (line.rfind("VmHWM:", 0) == 0) r.peak = std::stod(line.substr(6)) * 1024.0;
  }
  return r;
}

std::string cpu_name() {
  std::ifstream f("/proc/cpuinfo");
  std::string line;
  while (std::getline(f, line))
    if (line.rfind("model name", 0) == 0) {
      const auto c = line.find(':');
      return c == std::string::npos ? line : line.substr(c + 2);
    }
  return "unknown cpu";
}

std::string build_commit() { return DS_GIT_COMMIT; }

}  // namespace ds::rt
