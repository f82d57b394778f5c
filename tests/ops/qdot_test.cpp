// SPDX-License-Identifier: MIT
// Block-weight integer dot products (backend/cpu/qdot.h) for every ggml block weight format at every ISA level on
// this machine (a level the host lacks is skipped, visibly), against the fp64 dot of the dequantised weights
// (base/quant.h to_f32, bit-exact with ggml) with the dequantised activations (quantize_act's blocks, d_a * q_a).
//
// Bound: the kernels sum each block's (or sub-block's) integer products exactly and round in fp32 only when scaling
// a block sum and accumulating the blocks (at most a few dozen fp32 operations on any partial sum), so
//   |got - expected| <= 1e-5 * Σ_i |w_i a_i| + 1e-6
// (~170 ulps of fp32 relative to the sum of magnitudes; the dequantised weights themselves carry ggml's fp32
// rounding, a few ulps of |d·sc·q| + |dmin·m|).
//
// DS_QDOT_BENCH=1 also times kBenchFormats at 4096 columns (GB/s of weight bytes; M = 1 and 8; 1 and 2 threads; next
// to a plain read of the same bytes); DS_QDOT_BENCH_TYPES=IQ2_XXS,IQ1_S picks formats, DS_QDOT_BENCH_ROWS=n the rows.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "backend/cpu/isa.h"
#include "backend/cpu/qdot.h"
#include "base/quant.h"

namespace ds::cpu {
namespace {

const DType kFormats[] = {DType::Q4_0,   DType::Q4_1,    DType::Q5_0,   DType::Q5_1,  DType::Q8_0,
                          DType::IQ4_NL, DType::Q2_K,    DType::Q3_K,   DType::Q4_K,  DType::Q5_K,
                          DType::Q6_K,   DType::IQ4_XS,  DType::IQ2_XXS, DType::IQ2_XS, DType::IQ2_S,
                          DType::IQ3_XXS, DType::IQ3_S,  DType::IQ1_S,  DType::IQ1_M};

// The formats with their own kernel at the SIMD levels (today every block weight format).
const DType kSimdFormats[] = {DType::Q8_0,  DType::Q4_0,   DType::Q4_1,    DType::Q5_0,   DType::Q5_1,
                              DType::IQ4_NL, DType::Q2_K,   DType::Q3_K,    DType::Q4_K,   DType::Q5_K,
                              DType::Q6_K,  DType::IQ4_XS, DType::IQ2_XXS, DType::IQ2_XS, DType::IQ2_S,
                              DType::IQ3_XXS, DType::IQ3_S, DType::IQ1_S,  DType::IQ1_M};

// The formats DS_QDOT_BENCH times: the common ones and those of DeepSeek's "dynamic" GGUF quants.
const DType kBenchFormats[] = {DType::Q8_0,   DType::Q4_K,  DType::Q6_K,  DType::Q2_K,  DType::IQ1_S,
                               DType::IQ1_M,  DType::IQ2_XXS, DType::IQ2_XS, DType::IQ2_S, DType::IQ3_XXS,
                               DType::IQ3_S,  DType::Q4_1,  DType::Q5_1};

const Isa kLevels[] = {Isa::Scalar, Isa::Avx2, Isa::Avx512};

bool has_vnni() {
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx512vnni") != 0;
}

// Empty when the host runs `level`'s kernels, else why not.
std::string level_missing(Isa level) {
  if (level == Isa::Scalar) return "";
  if (detected_isa() < level) return std::string("host CPU lacks ") + isa_name(level);
  if (level == Isa::Avx512 && !has_vnni()) return "host CPU lacks avx512vnni (the avx512 qdot kernels need it)";
  return "";
}

QDotFn level_table(DType t, Isa level) {
  switch (level) {
    case Isa::Scalar: return qdot_scalar(t);
    case Isa::Avx2: return qdot_avx2(t);
    default: return qdot_avx512(t);
  }
}

// Byte offsets of a block's f16 scale fields (ggml-common.h); IQ1_M keeps its scale in the top nibbles of the four
// uint16 scales at byte 48.
std::vector<int> f16_fields(DType t) {
  switch (t) {
    case DType::Q4_1:
    case DType::Q5_1:
    case DType::Q4_K:
    case DType::Q5_K: return {0, 2};
    case DType::Q2_K: return {80, 82};
    case DType::Q3_K: return {108};
    case DType::Q6_K: return {208};
    case DType::IQ1_M: return {};
    default: return {0};
  }
}

// A random finite moderate f16 value: ±2^[-10, -2).
uint16_t random_f16(std::mt19937& rng) {
  std::uniform_real_distribution<float> e(-10.0f, -2.0f);
  const float v = std::exp2(e(rng)) * ((rng() & 1) ? -1.0f : 1.0f);
  return f32_to_f16(v);
}

// n / block random weight blocks: random bytes with the f16 scale fields set to random finite moderate values.
std::vector<uint8_t> random_weights(DType t, int64_t n, std::mt19937& rng) {
  const QuantFormat* f = quant_format(t);
  const int64_t nb = n / f->block;
  std::vector<uint8_t> w(size_t(nb * f->block_bytes));
  for (auto& b : w) b = uint8_t(rng());
  for (int64_t b = 0; b < nb; ++b) {
    uint8_t* blk = w.data() + b * f->block_bytes;
    for (int off : f16_fields(t)) {
      const uint16_t h = random_f16(rng);
      std::memcpy(blk + off, &h, 2);
    }
    if (t == DType::IQ1_M) {
      const uint16_t h = random_f16(rng);
      for (int i = 0; i < 4; ++i) {
        uint16_t s;
        std::memcpy(&s, blk + 48 + 2 * i, 2);
        s = uint16_t((s & 0x0fff) | (((h >> (4 * i)) & 15) << 12));
        std::memcpy(blk + 48 + 2 * i, &s, 2);
      }
    }
  }
  return w;
}

struct Acts {
  std::vector<uint8_t> bytes;  // M rows at `stride` bytes
  int64_t stride = 0;
  std::vector<double> deq;  // M x n dequantised activations, d_a * q_a
};

// extreme: every activation ±1 before quantisation, so every int8 quant is ±127 (the kernels' worst case for int16
// pair sums and offset corrections).
Acts random_acts(DType act, int M, int64_t n, std::mt19937& rng, bool extreme = false) {
  const QuantFormat* af = quant_format(act);
  const bool k = act == DType::Q8_K;
  const int ab = k ? 256 : 32, abytes = k ? int(sizeof(BlockQ8_K)) : int(sizeof(BlockQ8_0));
  (void)af;
  Acts A;
  const int64_t nb = n / ab;
  A.stride = nb * abytes + 40;  // padding between rows: the kernels must honour a_stride
  A.bytes.assign(size_t(A.stride * M), 0xA5);
  A.deq.resize(size_t(M * n));
  std::normal_distribution<float> nd(0.0f, 1.0f);
  std::vector<float> x(static_cast<size_t>(n));
  for (int m = 0; m < M; ++m) {
    for (auto& v : x) v = extreme ? ((rng() & 1) ? 1.0f : -1.0f) : nd(rng) * ((rng() % 8 == 0) ? 4.0f : 1.0f);
    uint8_t* row = A.bytes.data() + m * A.stride;
    quantize_act(act, x.data(), row, n);
    for (int64_t b = 0; b < nb; ++b) {
      double d;
      const int8_t* q;
      if (k) {
        const auto* blk = reinterpret_cast<const BlockQ8_K*>(row) + b;
        d = blk->d;
        q = blk->q;
      } else {
        const auto* blk = reinterpret_cast<const BlockQ8_0*>(row) + b;
        d = f16_to_f32(blk->d);
        q = blk->q;
      }
      for (int i = 0; i < ab; ++i) A.deq[size_t(m * n + b * ab + i)] = d * q[i];
    }
  }
  return A;
}

struct Case {
  DType type;
  Isa level;
};

std::string case_name(const testing::TestParamInfo<Case>& info) {
  return std::string(dtype_name(info.param.type)) + "_" + isa_name(info.param.level);
}

class QDotLevel : public testing::TestWithParam<Case> {};

TEST_P(QDotLevel, MatchesDequantisedDot) {
  const DType t = GetParam().type;
  const Isa level = GetParam().level;
  const std::string why = level_missing(level);
  if (!why.empty()) GTEST_SKIP() << why;
  const QuantFormat* f = quant_format(t);
  ASSERT_NE(f, nullptr);
  const QDotFn fn = qdot_for(t, level);
  const QDotFn ref = qdot_scalar(t);
  ASSERT_NE(fn, nullptr);
  ASSERT_NE(ref, nullptr);
  if (level != Isa::Scalar && level_table(t, level) == nullptr)
    std::printf("[ info ] %s at %s: no kernel of its own, runs %s\n", std::string(dtype_name(t)).c_str(),
                isa_name(level), fn == qdot_avx2(t) ? "avx2" : "scalar");
  if (level_table(t, level)) EXPECT_EQ(fn, level_table(t, level)) << "qdot_for must pick the level's own kernel";

  std::mt19937 rng(1234u + unsigned(t) * 77u + unsigned(level));
  const int64_t mults[] = {1, 2, 7, 33};
  const int Ms[] = {1, 2, 3, 5, 8, 9, 13};
  const int64_t ldo = 3;
  double worst = 0;
  for (int64_t mult : mults) {
    const int64_t n = mult * f->block;
    const std::vector<uint8_t> w = random_weights(t, n, rng);
    std::vector<float> wf(static_cast<size_t>(n));
    f->to_f32(w.data(), wf.data(), n);
    for (int M : Ms)
      for (bool extreme : {false, true}) {
        const Acts A = random_acts(f->act, M, n, rng, extreme);
        std::vector<float> out(size_t(M * ldo), 777.0f), sc(size_t(M * ldo), 777.0f);
        fn(w.data(), A.bytes.data(), A.stride, M, n, out.data(), ldo);
        ref(w.data(), A.bytes.data(), A.stride, M, n, sc.data(), ldo);
        for (int m = 0; m < M; ++m) {
          double expected = 0, mag = 0;
          for (int64_t i = 0; i < n; ++i) {
            const double p = double(wf[size_t(i)]) * A.deq[size_t(m * n + i)];
            expected += p;
            mag += std::fabs(p);
          }
          const double bound = 1e-5 * mag + 1e-6;
          const double got = out[size_t(m * ldo)];
          ASSERT_TRUE(std::isfinite(got)) << "n=" << n << " M=" << M << " m=" << m;
          EXPECT_LE(std::fabs(got - expected), bound)
              << dtype_name(t) << " " << isa_name(level) << " n=" << n << " M=" << M << " m=" << m
              << (extreme ? " (activations ±127)" : "") << " got " << got
              << " expected " << expected << " (Σ|wa| " << mag << ")";
          EXPECT_LE(std::fabs(got - double(sc[size_t(m * ldo)])), bound)
              << "vs scalar: n=" << n << " M=" << M << " m=" << m << " got " << got << " scalar " << sc[size_t(m * ldo)];
          worst = std::max(worst, std::fabs(got - expected) / (mag + 1e-30));
          for (int j = 1; j < ldo; ++j) ASSERT_EQ(out[size_t(m * ldo + j)], 777.0f) << "wrote outside out[m * ldo]";
        }
      }
  }
  std::printf("[ info ] %s %s: worst |got - expected| / Σ|wa| = %.2e\n", std::string(dtype_name(t)).c_str(),
              isa_name(level), worst);
}

std::vector<Case> all_cases() {
  std::vector<Case> c;
  for (DType t : kFormats)
    for (Isa l : kLevels) c.push_back({t, l});
  return c;
}

INSTANTIATE_TEST_SUITE_P(AllFormats, QDotLevel, testing::ValuesIn(all_cases()), case_name);

TEST(QDotTable, EveryBlockFormatEveryLevel) {
  for (DType t : kFormats) {
    ASSERT_NE(qdot_scalar(t), nullptr) << dtype_name(t);
    for (Isa l : {Isa::Scalar, Isa::Avx2, Isa::Avx512, Isa::Avx512Bf16})
      EXPECT_NE(qdot_for(t, l), nullptr) << dtype_name(t) << " at " << isa_name(l);
  }
  for (DType t : {DType::F32, DType::F16, DType::BF16, DType::F8_E4M3, DType::Q8_K, DType::Q8_1, DType::I32})
    for (Isa l : {Isa::Scalar, Isa::Avx2, Isa::Avx512, Isa::Avx512Bf16})
      EXPECT_EQ(qdot_for(t, l), nullptr) << dtype_name(t) << " at " << isa_name(l);
}

TEST(QDotTable, SimdLevelsCoverTheFastFormats) {
  for (DType t : kSimdFormats) {
    EXPECT_NE(qdot_avx2(t), nullptr) << dtype_name(t);
    EXPECT_NE(qdot_avx512(t), nullptr) << dtype_name(t);
  }
}

// The multi-row decode kernels (qdot_rows_for): each row's result bitwise the level's QDotFn with M = 1, for any
// number of rows (groups and tail), row stride larger than the row, and nothing written past out[R - 1].
TEST(QDotRows, BitwiseTheSingleRowKernel) {
  const std::string why = level_missing(Isa::Avx512);
  if (!why.empty()) GTEST_SKIP() << why;
  int formats = 0;
  for (DType t : kFormats) {
    const QDotRowsFn rows = qdot_rows_for(t, Isa::Avx512);
    if (!rows) continue;
    ++formats;
    const QDotFn one = qdot_for(t, Isa::Avx512);
    const QuantFormat* f = quant_format(t);
    std::mt19937 rng(99u + unsigned(t));
    for (int64_t mult : {1, 3, 8}) {
      const int64_t n = mult * f->block, rb = row_bytes(t, n), stride = rb + f->block_bytes;  // a gap between rows
      for (int R : {1, 2, 3, 4, 5, 7, 9}) {
        std::vector<uint8_t> w(size_t(R * stride));
        for (int r = 0; r < R; ++r) {
          const auto row = random_weights(t, n, rng);
          std::memcpy(w.data() + r * stride, row.data(), row.size());
        }
        for (bool extreme : {false, true}) {
          const Acts A = random_acts(f->act, 1, n, rng, extreme);
          std::vector<float> got(size_t(R + 1), 777.0f);
          rows(w.data(), stride, R, A.bytes.data(), n, got.data());
          for (int r = 0; r < R; ++r) {
            float want = 0;
            one(w.data() + r * stride, A.bytes.data(), A.stride, 1, n, &want, 1);
            EXPECT_EQ(got[size_t(r)], want) << dtype_name(t) << " n=" << n << " R=" << R << " row " << r;
          }
          EXPECT_EQ(got[size_t(R)], 777.0f) << "wrote past out[R - 1]";
        }
      }
    }
  }
  EXPECT_GE(formats, 6) << "Q2_K..Q6_K, IQ4_XS";
}

// The prefill tile kernels (qgemm_for): every result bitwise the level's QDotFn for that weight row and activation
// row, for tile remainders in both directions, odd and even block counts, a row stride larger than the row, an
// output stride larger than R, with and without accumulate, and nothing written outside the R x M outputs.
TEST(QGemm, BitwiseTheDotKernel) {
  const std::string why = level_missing(Isa::Avx512);
  if (!why.empty()) GTEST_SKIP() << why;
  int formats = 0;
  for (DType t : kFormats) {
    const QGemmFn gemm = qgemm_for(t, Isa::Avx512);
    if (!gemm) continue;
    ++formats;
    const QDotFn one = qdot_for(t, Isa::Avx512);
    const QuantFormat* f = quant_format(t);
    ASSERT_EQ(f->act, DType::Q8_0) << dtype_name(t);
    std::mt19937 rng(7u + unsigned(t));
    for (int64_t nb : {1, 2, 3, 8, 13}) {
      const int64_t n = nb * f->block, rb = row_bytes(t, n), stride = rb + f->block_bytes;
      for (int R : {1, 3, 4, 5, 9}) {
        std::vector<uint8_t> w(size_t(R * stride));
        for (int r = 0; r < R; ++r) {
          const auto row = random_weights(t, n, rng);
          std::memcpy(w.data() + r * stride, row.data(), row.size());
        }
        if (t == DType::Q8_0) w[2] = 0x80;  // a -128 weight quant (ggml never writes one; a file may)
        for (int M : {1, 2, 3, 4, 7, 11}) {
          const Acts A = random_acts(f->act, M, n, rng, M == 4);
          std::vector<uint8_t> q(size_t(M * packed_q_stride(nb)));
          std::vector<float> d(size_t(M * packed_d_stride(nb)));
          pack_q8_0_act(A.bytes.data(), A.stride, M, nb, q.data(), d.data());
          const QPackedAct x{q.data(), d.data(), packed_q_stride(nb), packed_d_stride(nb)};
          const int64_t ldy = R + 2;
          for (bool accumulate : {false, true}) {
            std::vector<float> got(size_t(M * ldy), 777.0f);
            gemm(w.data(), stride, R, x, M, n, got.data(), ldy, accumulate);
            for (int m = 0; m < M; ++m) {
              for (int r = 0; r < R; ++r) {
                float want = 0;
                one(w.data() + r * stride, A.bytes.data() + m * A.stride, A.stride, 1, n, &want, 1);
                if (accumulate) want = 777.0f + want;
                EXPECT_EQ(got[size_t(m * ldy + r)], want)
                    << dtype_name(t) << " nb=" << nb << " R=" << R << " M=" << M << " row " << r << " act " << m;
              }
              for (int64_t c = R; c < ldy; ++c) EXPECT_EQ(got[size_t(m * ldy + c)], 777.0f) << "wrote outside R x M";
            }
          }
        }
      }
    }
  }
  EXPECT_GE(formats, 4) << "Q8_0, Q4_0, Q5_0, IQ4_NL";
}

// ---- throughput (DS_QDOT_BENCH=1) --------------------------------------------------------------------------------

double seconds_of(const std::function<void()>& fn, int reps) {
  double best = 1e30;
  for (int r = 0; r < reps; ++r) {
    const auto t0 = std::chrono::steady_clock::now();
    fn();
    best = std::min(best, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  return best;
}

// Runs fn(r0, r1) on [0, rows) split over `threads` threads.
void split_rows(int64_t rows, int threads, const std::function<void(int64_t, int64_t)>& fn) {
  if (threads == 1) return fn(0, rows);
  std::vector<std::thread> ts;
  for (int t = 0; t < threads; ++t) ts.emplace_back(fn, rows * t / threads, rows * (t + 1) / threads);
  for (auto& th : ts) th.join();
}

// GB/s of weight bytes at M = 1 (and M = 8, where the decode is shared by 8 rows), on 1 thread and on 2 (the rows
// split in halves), next to a plain read of the same bytes.
TEST(QDotBench, ThroughputGBs) {
  if (!std::getenv("DS_QDOT_BENCH")) GTEST_SKIP() << "set DS_QDOT_BENCH=1 to time the kernels";
  const int64_t cols = 4096;
  std::mt19937 rng(7);
  // DS_QDOT_BENCH_TYPES=IQ2_XXS,IQ1_S,... picks formats (default: all of kBenchFormats); DS_QDOT_BENCH_ROWS a row count.
  std::vector<DType> types;
  if (const char* sel = std::getenv("DS_QDOT_BENCH_TYPES")) {
    const std::string list = std::string(",") + sel + ",";
    for (DType t : kFormats)
      if (list.find("," + std::string(dtype_name(t)) + ",") != std::string::npos) types.push_back(t);
  } else {
    types.assign(std::begin(kBenchFormats), std::end(kBenchFormats));
  }
  std::vector<int64_t> row_counts = {4096, 16384};
  if (const char* r = std::getenv("DS_QDOT_BENCH_ROWS")) row_counts = {std::atoll(r)};
  for (int64_t rows : row_counts) {
    for (DType t : types) {
      const QuantFormat* f = quant_format(t);
      const int64_t rb = row_bytes(t, cols);
      const std::vector<uint8_t> w = random_weights(t, rows * cols, rng);
      const Acts A = random_acts(f->act, 8, cols, rng);
      std::vector<float> out(static_cast<size_t>(rows * 8));
      const double gb = double(w.size()) / 1e9;
      for (int threads : {1, 2}) {
        std::atomic<uint64_t> sink{0};
        const double t_read = seconds_of(
            [&] {
              split_rows(rows, threads, [&](int64_t r0, int64_t r1) {
                uint64_t s = 0;
                const auto* p = reinterpret_cast<const uint64_t*>(w.data() + r0 * rb);
                for (int64_t i = 0; i < (r1 - r0) * rb / 8; ++i) s += p[i];
                sink.fetch_add(s, std::memory_order_relaxed);
              });
            },
            5);
        std::printf("[ bench ] %s %lldx%lld (%.1f MB) %d thread(s): read %.1f GB/s", std::string(dtype_name(t)).c_str(),
                    (long long)rows, (long long)cols, gb * 1e3, threads, gb / t_read);
        for (Isa l : kLevels) {
          if (!level_missing(l).empty() || (l == Isa::Scalar && threads > 1)) continue;
          const QDotFn fn = qdot_for(t, l);
          for (int M : {1, 8}) {
            if (l == Isa::Scalar && M > 1) continue;
            const double s = seconds_of(
                [&] {
                  split_rows(rows, threads, [&](int64_t r0, int64_t r1) {
                    for (int64_t r = r0; r < r1; ++r)
                      fn(w.data() + r * rb, A.bytes.data(), A.stride, M, cols, &out[size_t(r)], rows);
                  });
                },
                l == Isa::Scalar ? 1 : 5);
            std::printf(", %s M=%d %.1f", isa_name(l), M, gb / s);
          }
        }
        std::printf("\n");
      }
    }
  }
}

}  // namespace
}  // namespace ds::cpu
