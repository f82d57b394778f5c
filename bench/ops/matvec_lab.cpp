// SPDX-License-Identifier: MIT
// Decode matvec lab: how close the CPU backend's M = 1..4 products come to the memory's read bandwidth when they
// stream a working set far larger than the caches (as a decode step does), measured against a plain read of the
// same bytes in the same round (the machine's bandwidth drifts; the ratio does not).
// usage: matvec_lab [--threads N] [--rounds R] [--mb MB] [--rows N] [--k K] [--own] [--case NAME-PART] [--repeat P]
// --repeat P: P passes per timing (with a small --mb: the kernels' compute rate on cache-resident weights).
#include <immintrin.h>
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "backend/cpu/cpu_backend.h"
#include "base/dtype.h"
#include "base/huge_pages.h"
#include "base/quant.h"

using namespace ds;

namespace {
double now() { return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count(); }

__attribute__((target("avx512f"))) float read_all(const uint8_t* p, size_t n, int nt) {
  float tot = 0;
#pragma omp parallel num_threads(nt) reduction(+ : tot)
  {
    const size_t part = n / size_t(omp_get_num_threads()) / 512 * 512;
    const uint8_t* b = p + part * size_t(omp_get_thread_num());
    __m512 a[8];
    for (auto& x : a) x = _mm512_setzero_ps();
    for (size_t i = 0; i + 512 <= part; i += 512)
      for (int j = 0; j < 8; ++j) a[j] = _mm512_add_ps(a[j], _mm512_loadu_ps(reinterpret_cast<const float*>(b + i + 64 * j)));
    for (int j = 1; j < 8; ++j) a[0] = _mm512_add_ps(a[0], a[j]);
    tot += _mm512_reduce_add_ps(a[0]);
  }
  return tot;
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}
}  // namespace

int main(int argc, char** argv) {
  int threads = 2, rounds = 9, repeat = 1;
  bool own = false;  // --own: the backend's own copy and layout (Rows16), as `--load copy` gives the model
  std::string only;  // --case S: only the cases whose name contains S
  int64_t mb = 1024, N = 2816, K = 2048;
  for (int i = 1; i < argc; ++i)
    if (std::string(argv[i]) == "--own") own = true;
  for (int i = 1; i + 1 < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--threads") threads = std::atoi(argv[i + 1]);
    else if (a == "--rounds") rounds = std::atoi(argv[i + 1]);
    else if (a == "--mb") mb = std::atoll(argv[i + 1]);
    else if (a == "--rows") N = std::atoll(argv[i + 1]);
    else if (a == "--k") K = std::atoll(argv[i + 1]);
    else if (a == "--case") only = argv[i + 1];
    else if (a == "--repeat") repeat = std::max(1, std::atoi(argv[i + 1]));
  }
  struct Case { DType dt; ops::Precision prec; int64_t M; const char* name; };
  const Case cases[] = {{DType::BF16, ops::Precision::F32, 1, "bf16 f32 M1"},
                        {DType::BF16, ops::Precision::Fast, 1, "bf16 fast M1"},
                        {DType::BF16, ops::Precision::Fast, 4, "bf16 fast M4"},
                        {DType::F8_E4M3, ops::Precision::Fast, 1, "fp8 fast M1"},
                        {DType::F8_E4M3, ops::Precision::F32, 1, "fp8 f32 M1"},
                        {DType::Q8_0, ops::Precision::Fast, 1, "q8_0 fast M1"},
                        {DType::Q8_0, ops::Precision::Fast, 4, "q8_0 fast M4"},
                        {DType::Q8_0, ops::Precision::F32, 1, "q8_0 f32 M1"},
                        {DType::Q5_0, ops::Precision::Fast, 1, "q5_0 fast M1"},
                        {DType::Q5_0, ops::Precision::F32, 1, "q5_0 f32 M1"},
                        {DType::Q4_K, ops::Precision::Fast, 1, "q4_k fast M1"},
                        {DType::Q4_K, ops::Precision::F32, 1, "q4_k f32 M1"},
                        {DType::Q6_K, ops::Precision::Fast, 1, "q6_k fast M1"},
                        {DType::Q6_K, ops::Precision::F32, 1, "q6_k f32 M1"}};
  auto be = cpu::make_cpu_backend(threads, own);
  std::printf("matvec lab: %lld MB per pass of [%lld x %lld] matrices, %d threads, %d rounds\n", (long long)mb,
              (long long)N, (long long)K, threads, rounds);
  for (const Case& c : cases) {
    if (!only.empty() && std::string(c.name).find(only) == std::string::npos) continue;
    const size_t mat = size_t(N * row_bytes(c.dt, K));  // random bytes below: finite in every format
    const size_t n_mat = std::max<size_t>(1, size_t(mb) * 1000000 / mat);
    HugePageBuffer w(mat * n_mat, "lab weights");
    std::mt19937 g(1);
    if (c.dt == DType::F8_E4M3) {  // as a checkpoint's blocks: normal values, the block's max near 448
      std::normal_distribution<float> nd(0.0f, 448.0f / 6.0f);
      for (size_t i = 0; i < w.size(); ++i) w.data()[i] = f32_to_fp8_e4m3(nd(g));
    } else {
      for (size_t i = 0; i < w.size(); i += 4) {
        const uint32_t r = g() & 0x3f3f3f3f;  // finite in every dtype
        std::memcpy(w.data() + i, &r, std::min<size_t>(4, w.size() - i));
      }
    }
    std::vector<float> scale(size_t((N + 127) / 128 * ((K + 127) / 128)), 0.01f);
    std::vector<float> x(size_t(c.M * K), 0.5f), y(size_t(c.M * N));
    std::vector<WeightView> views;
    for (size_t m = 0; m < n_mat; ++m) {
      WeightView v;
      v.data = w.data() + m * mat; v.dtype = c.dt; v.rows = N; v.cols = K;
      if (c.dt == DType::F8_E4M3) { v.scale = scale.data(); v.scale_cols = (K + 127) / 128; }
      views.push_back(be->prepare_weight(v, ops::WeightUse::MatmulOnly));
    }
    std::vector<double> ratio, gbs, probe;
    for (int r = 0; r < rounds; ++r) {
      double t0 = now();
      float s = 0;  // a plain read of exactly what the kernels read (the backend's copies with --own)
      for (int rep = 0; rep < repeat; ++rep)
        for (const WeightView& v : views) s += read_all(static_cast<const uint8_t*>(v.data), size_t(v.bytes()), threads);
      volatile float sink = s;
      (void)sink;
      const double tp = now() - t0;
      t0 = now();
      for (size_t m = 0; m < n_mat * size_t(repeat); ++m) {
        ops::MatmulParams p;
        p.x = x.data(); p.ldx = K; p.y = y.data(); p.ldy = N; p.M = c.M; p.N = N; p.K = K; p.precision = c.prec;
        p.w = views[m % n_mat];
        be->matmul(p);
      }
      const double tk = now() - t0;
      ratio.push_back(tp / tk);
      gbs.push_back(double(w.size()) * repeat / tk / 1e9);
      probe.push_back(double(w.size()) * repeat / tp / 1e9);
    }
    std::printf("%-14s kernel %6.1f GB/s  read %6.1f GB/s  kernel/read %5.1f%% (medians)\n", c.name, median(gbs),
                median(probe), 100.0 * median(ratio));
  }
  return 0;
}
