// SPDX-License-Identifier: MIT
// fp32-activation block-weight dot products (backend/cpu/qfdot.h) for every format with a kernel at every SIMD level
// on this machine (a level the host lacks is skipped, visibly), against the fp64 dot of the dequantised weights
// (base/quant.h to_f32, bit-exact with ggml) with the fp32 activations:
//   |got - expected| <= 2e-6 * Σ_i |w_i x_i| + 1e-30
// (~34 ulps of fp32 relative to the sum of magnitudes: the kernels' weights are within an ulp of to_f32's, and they
// sum in fp32 over 8- or 16-lane accumulators; measured worst case ~3% of the bound), with nothing written outside
// out[m * ldo].
//
// DS_QFDOT_BENCH=1 also times the kernels: GB/s of weight bytes at M = 1 (and 8) on a 16384 x 2048 matrix (Q8_0,
// Q4_K, Q6_K; DS_QFDOT_BENCH_TYPES=Q5_K,IQ4_XS,... picks others, DS_QFDOT_BENCH_ROWS=n the rows) on 1 and 2 threads,
// next to a plain read of the same bytes and to the fallback (to_f32 of the row, then an fp32 dot).
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "backend/cpu/isa.h"
#include "backend/cpu/qfdot.h"
#include "base/quant.h"
#include "ops/op_harness.h"

namespace ds::cpu {
namespace {

// The formats with a kernel at both SIMD levels.
const DType kFormats[] = {DType::Q8_0, DType::Q4_K, DType::Q6_K, DType::Q5_K, DType::Q4_0, DType::Q5_0,
                          DType::Q5_1, DType::Q4_1, DType::Q3_K, DType::Q2_K, DType::IQ4_XS, DType::IQ4_NL};
const Isa kLevels[] = {Isa::Avx2, Isa::Avx512};

struct Case {
  DType type;
  Isa level;
};

std::string case_name(const testing::TestParamInfo<Case>& p) {
  return std::string(dtype_name(p.param.type)) + "_" + isa_name(p.param.level);
}

class QFDotLevel : public testing::TestWithParam<Case> {};

TEST_P(QFDotLevel, MatchesDequantisedDot) {
  const Case c = GetParam();
  if (detected_isa() < c.level) GTEST_SKIP() << "host CPU lacks " << isa_name(c.level);
  const QFDotFn fn = qfdot_for(c.type, c.level);
  ASSERT_NE(fn, nullptr) << dtype_name(c.type) << " at " << isa_name(c.level);
  const QuantFormat* f = quant_format(c.type);
  test::Rng rng(1000 + 31 * uint64_t(c.type) + uint64_t(c.level));
  const float kSentinel = -12345.678f;
  for (int64_t nb : {1, 2, 7, 33}) {
    const int64_t n = nb * f->block;
    std::vector<uint8_t> w(size_t(nb * f->block_bytes));
    test::randomize_blocks(rng, c.type, w.data(), nb);
    std::vector<float> wf(static_cast<size_t>(n));
    f->to_f32(w.data(), wf.data(), n);
    // {1, 2, 3, 5, 8, 9, 13} plus 4, 6, 7: every row-group size the kernels instantiate (AVX-512 passes of 8 rows,
    // AVX2 passes of 4, then the remainder).
    for (int M : {1, 2, 3, 4, 5, 6, 7, 8, 9, 13}) {
      const int64_t ldx = n + 5;  // > n, and rows not 64-byte aligned
      const int64_t ldo = 3;
      std::vector<float> xs(size_t(M * ldx + 1));
      for (auto& v : xs) v = rng.uni();
      const float* x = xs.data() + 1;
      std::vector<float> out(size_t(M * ldo + 4), kSentinel);
      fn(w.data(), x, ldx, M, n, out.data(), ldo);
      for (int m = 0; m < M; ++m) {
        double want = 0.0, mag = 0.0;
        for (int64_t i = 0; i < n; ++i) {
          want += double(wf[size_t(i)]) * double(x[m * ldx + i]);
          mag += std::fabs(double(wf[size_t(i)]) * double(x[m * ldx + i]));
        }
        const double got = out[size_t(m * ldo)];
        ASSERT_LE(std::fabs(got - want), 2e-6 * mag + 1e-30)
            << dtype_name(c.type) << " at " << isa_name(c.level) << ": n = " << n << ", M = " << M << ", row " << m
            << ": got " << got << ", want " << want << " (Σ|w x| = " << mag << ")";
      }
      for (size_t i = 0; i < out.size(); ++i)
        if (i % size_t(ldo) != 0 || i >= size_t(M * ldo))
          ASSERT_EQ(out[i], kSentinel) << dtype_name(c.type) << " at " << isa_name(c.level) << ": n = " << n
                                       << ", M = " << M << ": wrote out[" << i << "]";
    }
  }
}

std::vector<Case> all_cases() {
  std::vector<Case> c;
  for (DType t : kFormats)
    for (Isa l : kLevels) c.push_back({t, l});
  return c;
}

INSTANTIATE_TEST_SUITE_P(AllFormats, QFDotLevel, testing::ValuesIn(all_cases()), case_name);

TEST(QFDotTable, KernelsWhereWritten) {
  for (DType t : kFormats) {
    EXPECT_EQ(qfdot_for(t, Isa::Scalar), nullptr) << dtype_name(t);
    EXPECT_NE(qfdot_for(t, Isa::Avx2), nullptr) << dtype_name(t);
    EXPECT_NE(qfdot_for(t, Isa::Avx512), nullptr) << dtype_name(t);
    EXPECT_EQ(qfdot_for(t, Isa::Avx512Bf16), qfdot_for(t, Isa::Avx512)) << dtype_name(t);
    EXPECT_NE(qfdot_for(t, Isa::Avx512), qfdot_for(t, Isa::Avx2)) << dtype_name(t) << ": no AVX-512 kernel";
  }
  for (DType t : {DType::F32, DType::BF16, DType::F16, DType::F8_E4M3, DType::Q8_K, DType::Q8_1, DType::IQ2_XXS,
                  DType::IQ2_XS, DType::IQ2_S, DType::IQ3_XXS, DType::IQ3_S, DType::IQ1_S, DType::IQ1_M, DType::I32})
    for (Isa l : {Isa::Scalar, Isa::Avx2, Isa::Avx512, Isa::Avx512Bf16})
      EXPECT_EQ(qfdot_for(t, l), nullptr) << dtype_name(t) << " at " << isa_name(l);
}

// The multi-row decode kernels (qfdot_rows_for): each row's result bitwise the level's QFDotFn with M = 1, for any
// number of rows (pairs and the odd one), a row stride larger than the row, nothing written past out[R - 1].
TEST(QFDotRows, BitwiseTheSingleRowKernel) {
  if (detected_isa() < Isa::Avx512) GTEST_SKIP() << "host CPU lacks " << isa_name(Isa::Avx512);
  int formats = 0;
  for (DType t : kFormats) {
    const QFDotRowsFn rows = qfdot_rows_for(t, Isa::Avx512);
    if (!rows) continue;
    ++formats;
    const QFDotFn one = qfdot_for(t, Isa::Avx512);
    const QuantFormat* f = quant_format(t);
    test::Rng rng(555 + uint64_t(t));
    for (int64_t nb : {1, 2, 7}) {
      const int64_t n = nb * f->block, stride = nb * f->block_bytes + 3;  // a gap, rows not aligned
      for (int R : {1, 2, 3, 4, 5}) {
        std::vector<uint8_t> w(size_t(R * stride));
        for (int r = 0; r < R; ++r) test::randomize_blocks(rng, t, w.data() + r * stride, nb);
        std::vector<float> x(static_cast<size_t>(n), 0.0f);
        for (auto& v : x) v = rng.uni();
        std::vector<float> got(size_t(R + 1), -12345.678f);
        rows(w.data(), stride, R, x.data(), n, got.data());
        for (int r = 0; r < R; ++r) {
          float want = 0;
          one(w.data() + r * stride, x.data(), n, 1, n, &want, 1);
          EXPECT_EQ(got[size_t(r)], want) << dtype_name(t) << " n=" << n << " R=" << R << " row " << r;
        }
        EXPECT_EQ(got[size_t(R)], -12345.678f) << "wrote past out[R - 1]";
      }
    }
  }
  EXPECT_GE(formats, 11) << "every AVX-512 format but Q8_0";
}

// ---- throughput (DS_QFDOT_BENCH=1) -------------------------------------------------------------------------------

double best_seconds(const std::function<void()>& fn, int reps) {
  double best = 1e30;
  for (int r = 0; r < reps; ++r) {
    const auto t0 = std::chrono::steady_clock::now();
    fn();
    best = std::min(best, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  return best;
}

// fn(r0, r1) on [0, rows) split over `threads` threads.
void split_rows(int64_t rows, int threads, const std::function<void(int64_t, int64_t)>& fn) {
  if (threads == 1) return fn(0, rows);
  std::vector<std::thread> ts;
  for (int t = 0; t < threads; ++t) ts.emplace_back(fn, rows * t / threads, rows * (t + 1) / threads);
  for (auto& th : ts) th.join();
}

TEST(QFDotBench, ThroughputGBs) {
  if (!std::getenv("DS_QFDOT_BENCH")) GTEST_SKIP() << "set DS_QFDOT_BENCH=1 to time the kernels";
  const int64_t cols = 2048;
  int64_t rows = 16384;
  if (const char* r = std::getenv("DS_QFDOT_BENCH_ROWS")) rows = std::atoll(r);
  std::vector<DType> types = {DType::Q8_0, DType::Q4_K, DType::Q6_K};
  if (const char* sel = std::getenv("DS_QFDOT_BENCH_TYPES")) {
    types.clear();
    const std::string list = std::string(",") + sel + ",";
    for (DType t : kFormats)
      if (list.find("," + std::string(dtype_name(t)) + ",") != std::string::npos) types.push_back(t);
  }
  test::Rng rng(7);
  std::vector<float> x(size_t(8 * cols));
  for (auto& v : x) v = rng.uni();
  for (DType t : types) {
    const QuantFormat* f = quant_format(t);
    const int64_t rb = row_bytes(t, cols);
    std::vector<uint8_t> w(size_t(rows * rb));
    test::randomize_blocks(rng, t, w.data(), rows * cols / f->block);
    std::vector<float> out(size_t(rows * 8));
    const double gb = double(w.size()) / 1e9;
    for (int threads : {1, 2}) {
      std::atomic<uint64_t> sink{0};
      const double t_read = best_seconds(
          [&] {
            split_rows(rows, threads, [&](int64_t r0, int64_t r1) {
              uint64_t s0 = 0, s1 = 0, s2 = 0, s3 = 0;
              const auto* p = reinterpret_cast<const uint64_t*>(w.data() + r0 * rb);
              const int64_t words = (r1 - r0) * rb / 8;
              int64_t i = 0;
              for (; i + 4 <= words; i += 4) { s0 += p[i]; s1 += p[i + 1]; s2 += p[i + 2]; s3 += p[i + 3]; }
              for (; i < words; ++i) s0 += p[i];
              sink.fetch_add(s0 + s1 + s2 + s3, std::memory_order_relaxed);
            });
          },
          10);
      const double t_deq = best_seconds(
          [&] {
            split_rows(rows, threads, [&](int64_t r0, int64_t r1) {
              std::vector<float> row(static_cast<size_t>(cols));
              for (int64_t r = r0; r < r1; ++r) {
                f->to_f32(w.data() + r * rb, row.data(), cols);
                float s = 0.0f;
                for (int64_t i = 0; i < cols; ++i) s += row[size_t(i)] * x[size_t(i)];
                out[size_t(r)] = s;
              }
            });
          },
          2);
      std::printf("[ bench ] %s %lldx%lld (%.1f MB) %d thread(s): read %.1f GB/s, to_f32+dot %.1f", 
                  std::string(dtype_name(t)).c_str(), (long long)rows, (long long)cols, gb * 1e3, threads, gb / t_read,
                  gb / t_deq);
      for (Isa l : kLevels) {
        if (detected_isa() < l) continue;
        const QFDotFn fn = qfdot_for(t, l);
        for (int M : {1, 8}) {
          const double s = best_seconds(
              [&] {
                split_rows(rows, threads, [&](int64_t r0, int64_t r1) {
                  for (int64_t r = r0; r < r1; ++r)
                    fn(w.data() + r * rb, x.data(), cols, M, cols, &out[size_t(r)], rows);
                });
              },
              10);
          std::printf(", %s M=%d %.1f", isa_name(l), M, gb / s);
        }
      }
      std::printf(" GB/s\n");
      std::fflush(stdout);
    }
  }
}

}  // namespace
}  // namespace ds::cpu
