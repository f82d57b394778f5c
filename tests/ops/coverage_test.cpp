// SPDX-License-Identifier: MIT
// What the op tests prove depends on the host: they run every ISA level up to the detected one. These checks make
// that visible and make it fail where it would silently shrink:
//  - every test process prints the ISA levels its cases ran and how many matmuls ran on the bf16 kernels;
//  - the ISA detection agrees with the CPU's own flags (/proc/cpuinfo, read independently of cpuid builtins), and on
//    a host with AVX512-BF16 the Fast matmul really runs the bf16 kernel;
//  - the Fast budget rejects a kernel that truncates activations to bf16 instead of rounding them to nearest even.
#include <cstdio>
#include <fstream>
#include <set>
#include <sstream>

#include "failures.h"
#include "ops/op_cases.h"

namespace ds::test {
namespace {

// Printed when the test process ends, so each ctest entry's log says which kernels it exercised.
class IsaReport : public ::testing::Environment {
 public:
  void TearDown() override {
    std::string ran;
    for (int i = 0; i <= int(cpu::Isa::Avx512Bf16); ++i)
      if (isa_levels_run()[size_t(i)]) ran += std::string(ran.empty() ? "" : ", ") + cpu::isa_name(cpu::Isa(i));
    if (ran.empty()) return;
    std::printf("ops: ISA levels run: %s (host: %s); matmuls on bf16 kernels: %llu\n", ran.c_str(),
                cpu::isa_name(cpu::detected_isa()),
                static_cast<unsigned long long>(cpu::matmul_count(cpu::Isa::Avx512Bf16, true)));
  }
};
[[maybe_unused]] const auto* const kIsaReport = ::testing::AddGlobalTestEnvironment(new IsaReport);

std::set<std::string> cpuinfo_flags() {
  std::ifstream f("/proc/cpuinfo");
  std::string line;
  std::set<std::string> flags;
  while (std::getline(f, line))
    if (line.rfind("flags", 0) == 0) {
      std::istringstream in(line.substr(line.find(':') + 1));
      for (std::string w; in >> w;) flags.insert(w);
      break;
    }
  return flags;
}

TEST(CpuIsa, DetectionMatchesTheHostAndBf16KernelsRun) {
  const auto f = cpuinfo_flags();
  if (f.empty()) GTEST_SKIP() << "no /proc/cpuinfo flags on this host: ISA coverage not checked";
  auto has = [&](const char* x) { return f.count(x) > 0; };
  cpu::Isa want = cpu::Isa::Scalar;
  if (has("avx2") && has("fma") && has("f16c")) want = cpu::Isa::Avx2;
  if (want == cpu::Isa::Avx2 && has("avx512f") && has("avx512bw") && has("avx512vl") && has("avx512dq"))
    want = cpu::Isa::Avx512;
  if (want == cpu::Isa::Avx512 && has("avx512_bf16") && has("avx512vbmi")) want = cpu::Isa::Avx512Bf16;
  std::printf("host flags say %s, detection says %s\n", cpu::isa_name(want), cpu::isa_name(cpu::detected_isa()));
  ASSERT_EQ(cpu::detected_isa(), want) << "the op tests would not run this host's best kernels";
  ASSERT_EQ(isa_levels().size(), size_t(want) + 1);

  // A Fast matmul at the top level must go through that level's kernels (bf16 products where the host has them).
  const uint64_t before = cpu::matmul_count(want, want == cpu::Isa::Avx512Bf16);
  matmul_case({DType::BF16, false, 3, 70, 96, false, false, ops::Precision::Fast}, check_op);
  EXPECT_GT(cpu::matmul_count(want, want == cpu::Isa::Avx512Bf16), before)
      << "Fast matmul on BF16 weights did not run the " << cpu::isa_name(want) << " kernels";
}

// Truncating x to bf16 (dropping the low 16 bits) instead of rounding to nearest even: ref run on truncated x is what
// such a kernel computes. The budget every Fast matmul is held to must reject it, on decode and prefill shapes.
TEST(BudgetsTest, FastMatmulBudgetRejectsTruncatedActivations) {
  for (int64_t M : {1, 17}) {
    Rng rng{uint64_t(M)};
    const int64_t N = 64, K = 300;
    OwnedWeight w = make_weight(rng, DType::BF16, N, K);
    std::vector<float> x = rng.vec(size_t(M * K)), xt(x.size());
    for (size_t i = 0; i < x.size(); ++i) {
      uint32_t u;
      std::memcpy(&u, &x[i], 4);
      u &= 0xffff0000u;
      std::memcpy(&xt[i], &u, 4);
    }
    auto ref = ref::make_ref_backend();
    auto mm = [&](const std::vector<float>& in, ops::Precision prec) {
      std::vector<float> y(size_t(M * N));
      ops::MatmulParams p;
      p.x = in.data(); p.ldx = K; p.w = w.view; p.y = y.data(); p.ldy = N; p.M = M; p.N = N; p.K = K;
      p.precision = prec;
      ref->matmul(p);
      return y;
    };
    const auto want = mm(x, ops::Precision::Fast), truncated = mm(xt, ops::Precision::F32);
    // Both bounds reject it on their own (NMSE 1e-5 vs 1e-10, max_rel 4e-3 vs 2e-5 here).
    EXPECT_EQ(count_failures([&] { expect_close(truncated, want, kF32, "truncating kernel"); }), 2) << "M " << M;
    // Rounding to nearest even (what ref's Fast does) passes, of course.
    std::vector<float> xr(x.size());
    for (size_t i = 0; i < x.size(); ++i) xr[i] = bf16_to_f32(f32_to_bf16(x[i]));
    expect_close(mm(xr, ops::Precision::F32), want, kF32, "rounding kernel");
  }
}

// The op comparison fails on a non-finite value on either side (a NaN reference is no more acceptable than a NaN
// result).
TEST(BudgetsTest, NonFiniteValuesFail) {
  const std::vector<float> ok = {0.5f, -1.0f, 2.0f};
  EXPECT_EQ(count_failures([&] { expect_close(ok, ok, kF32, "same"); }), 0);
  for (float bad : {NAN, INFINITY})
    for (int side = 0; side < 2; ++side) {
      std::vector<float> got = ok, want = ok;
      (side ? want : got)[1] = bad;
      EXPECT_GE(count_failures([&] { expect_close(got, want, kF32, "non-finite"); }), 1) << bad << " side " << side;
    }
}

}  // namespace
}  // namespace ds::test
