// SPDX-License-Identifier: MIT
// CPU op micro-benchmark at DeepSeek-V2-Lite shapes: matvec (M=1) GB/s of weights streamed, and as % of the
// machine's 2-thread read bandwidth (pass --bw GB/s, default 72); prefill matmul (M=512) GFLOP/s.
// Usage: ops_bench [--threads N] [--bw GBps] [--isa scalar|avx2|avx512|avx512bf16] [--own] [--prefill-only]
#include <omp.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "backend/cpu/cpu_backend.h"
#include "backend/cpu/isa.h"
#include "base/dtype.h"

using namespace ds;

namespace {
double now() { return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count(); }

struct W {
  std::vector<uint8_t> bytes;
  std::vector<float> scale;
  WeightView v;
};

W make(DType dt, int64_t N, int64_t K) {
  W w;
  w.bytes.resize(size_t(N * K * dtype_size(dt)));
  std::mt19937 g(1);
  for (auto& b : w.bytes) b = uint8_t(g() & 0x3f);  // finite values in every dtype
  w.v.data = w.bytes.data(); w.v.dtype = dt; w.v.rows = N; w.v.cols = K;
  if (dt == DType::F8_E4M3) {
    w.scale.assign(size_t((N + 127) / 128 * ((K + 127) / 128)), 0.01f);
    w.v.scale = w.scale.data(); w.v.scale_cols = (K + 127) / 128;
  }
  return w;
}

// Median-free simple timing: warm up, then repeat for at least `min_s` seconds; returns seconds per call.
template <typename F>
double time_it(F&& f, double min_s = 0.5) {
  f();
  int reps = 0;
  const double t0 = now();
  do { f(); ++reps; } while (now() - t0 < min_s);
  return (now() - t0) / reps;
}
}  // namespace

int main(int argc, char** argv) {
  int threads = 0;
  double bw = 72.0;
  for (int i = 1; i + 1 < argc; ++i) {
    if (!std::strcmp(argv[i], "--threads")) threads = std::atoi(argv[i + 1]);
    else if (!std::strcmp(argv[i], "--bw")) bw = std::atof(argv[i + 1]);
    else if (!std::strcmp(argv[i], "--isa")) {
      const std::string s = argv[i + 1];
      cpu::set_isa_cap(s == "scalar" ? cpu::Isa::Scalar : s == "avx2" ? cpu::Isa::Avx2
                       : s == "avx512" ? cpu::Isa::Avx512 : cpu::Isa::Avx512Bf16);
    }
  }
  // --own: weights copied into the backend's own memory and layout (what `--load copy` gives the model).
  bool own = false;
  for (int i = 1; i < argc; ++i) own |= !std::strcmp(argv[i], "--own");
  auto be = cpu::make_cpu_backend(threads, own);
  std::printf("isa=%s threads=%d (reference bandwidth %.0f GB/s)\n", cpu::isa_name(cpu::active_isa()),
              threads > 0 ? threads : omp_get_num_procs(), bw);

  struct Shape { const char* name; int64_t N, K; };
  const Shape mv[] = {{"mlp.gate (10944x2048)", 10944, 2048}, {"mlp.down (2048x10944)", 2048, 10944},
                      {"lm_head (102400x2048)", 102400, 2048}, {"V3 vocab (129280x2048)", 129280, 2048},
                      {"expert.gate (1408x2048)", 1408, 2048}};
  bool prefill_only = false;
  for (int i = 1; i < argc; ++i) prefill_only |= !std::strcmp(argv[i], "--prefill-only");
  for (DType dt : {DType::BF16, DType::F8_E4M3})
    for (ops::Precision pr : {ops::Precision::F32, ops::Precision::Fast})
      for (const Shape& s : mv) {
        if (prefill_only) break;
        W w = make(dt, s.N, s.K);
        std::vector<float> x(size_t(s.K), 0.5f), y(size_t(s.N));
        ops::MatmulParams p;
        p.x = x.data(); p.ldx = s.K; p.w = be->prepare_weight(w.v, ops::WeightUse::MatmulOnly); p.y = y.data();
        p.ldy = s.N; p.M = 1; p.N = s.N; p.K = s.K;
        p.precision = pr;
        const double t = time_it([&] { be->matmul(p); });
        const double gbs = double(w.bytes.size()) / t / 1e9;
        std::printf("matvec %-5s %-4s %-26s %8.1f us  %6.1f GB/s  %5.1f%% of %.0f GB/s\n",
                    std::string(dtype_name(dt)).c_str(), pr == ops::Precision::Fast ? "fast" : "f32", s.name,
                    t * 1e6, gbs, 100.0 * gbs / bw, bw);
      }
  const Shape pf[] = {{"q/o-like (2048x2048)", 2048, 2048}, {"mlp.gate (10944x2048)", 10944, 2048},
                      {"expert.down (2048x1408)", 2048, 1408}};
  for (int64_t M : {512, 48})
  for (DType dt : {DType::BF16, DType::F8_E4M3})
    for (ops::Precision pr : {ops::Precision::F32, ops::Precision::Fast})
      for (const Shape& s : pf) {
        W w = make(dt, s.N, s.K);
        std::vector<float> x(size_t(M * s.K), 0.25f), y(size_t(M * s.N));
        ops::MatmulParams p;
        p.x = x.data(); p.ldx = s.K; p.w = be->prepare_weight(w.v, ops::WeightUse::MatmulOnly); p.y = y.data();
        p.ldy = s.N; p.M = M; p.N = s.N; p.K = s.K;
        p.precision = pr;
        const double t = time_it([&] { be->matmul(p); }, 1.0);
        std::printf("prefill M=%-3lld %-5s %-4s %-26s %8.2f ms  %7.1f GFLOP/s\n", (long long)M, std::string(dtype_name(dt)).c_str(),
                    pr == ops::Precision::Fast ? "fast" : "f32", s.name, t * 1e3, 2.0 * M * s.N * s.K / t / 1e9);
      }
  return 0;
}
