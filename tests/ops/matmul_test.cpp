// SPDX-License-Identifier: MIT
// CPU matmul vs the reference: every weight dtype (FP8 with and without block scales, partial blocks, row slices),
// odd shapes, strides, accumulate, w_kn, decode (M <= 8) and prefill (M > 8) paths, F32 and Fast precision.
#include "ops/op_harness.h"

namespace ds::test {
namespace {

// F32: fp32 FMA sums vs the fp64 reference -> ~1e-6 of the output scale; budget 2e-5.
const Budget kF32{1e-10, 2e-5};
// Fast: the bf16 kernels round x exactly like ref's Fast mode (only sum order differs), but levels without
// AVX512-BF16 (and F16/F32 weights) run the F32 kernels on unrounded x: bf16 rounding error of x, ~2^-9 per term.
const Budget kFast{1e-4, 1e-2};

struct MmCase {
  DType dt;
  bool scaled;
  int64_t M, N, K;
  bool accumulate = false;
  bool w_kn = false;
  ops::Precision prec = ops::Precision::F32;
  int64_t slice0 = 0;  // > 0: W is rows [slice0, slice0 + N) of a taller parent (row0 != 0)
};

std::string name(const MmCase& c) {
  return std::string(dtype_name(c.dt)) + (c.scaled ? "+scale" : "") + " M" + std::to_string(c.M) + " N" +
         std::to_string(c.N) + " K" + std::to_string(c.K) + (c.accumulate ? " acc" : "") + (c.w_kn ? " kn" : "") +
         (c.prec == ops::Precision::Fast ? " fast" : "") + (c.slice0 ? " row0=" + std::to_string(c.slice0) : "");
}

void run_case(const MmCase& c) {
  Rng rng(uint64_t(c.M * 1000003 + c.N * 1009 + c.K * 7 + int(c.dt)));
  const int64_t wr = c.w_kn ? c.K : c.N, wc = c.w_kn ? c.N : c.K;
  OwnedWeight w = make_weight(rng, c.dt, wr + c.slice0, wc, c.scaled);
  const WeightView wv = c.slice0 ? w.view.row_slice(c.slice0, wr) : w.view;
  const int64_t ldx = c.K + 3, ldy = c.N + 5;  // strided rows
  const std::vector<float> x = rng.vec(size_t(c.M * ldx));
  const std::vector<float> y0 = rng.vec(size_t(c.M * ldy));
  check_op(name(c), c.prec == ops::Precision::Fast ? kFast : kF32, [&](ops::Backend& be) {
    std::vector<float> y = y0;
    ops::MatmulParams p;
    p.x = x.data(); p.ldx = ldx; p.w = wv; p.w_kn = c.w_kn; p.y = y.data(); p.ldy = ldy;
    p.M = c.M; p.N = c.N; p.K = c.K; p.accumulate = c.accumulate; p.precision = c.prec;
    be.matmul(p);
    // Compare only the [M, N] block; the padding columns must be untouched.
    std::vector<float> out;
    for (int64_t m = 0; m < c.M; ++m) {
      for (int64_t n = 0; n < c.N; ++n) out.push_back(y[m * ldy + n]);
      for (int64_t n = c.N; n < ldy; ++n) EXPECT_EQ(y[m * ldy + n], y0[m * ldy + n]) << "wrote past N";
    }
    return out;
  });
}

struct DtCase { DType dt; bool scaled; };
const DtCase kDtypes[] = {{DType::F32, false}, {DType::BF16, false}, {DType::F16, false},
                          {DType::F8_E4M3, false}, {DType::F8_E4M3, true}};

TEST(CpuMatmul, OddShapesAllDtypes) {
  for (const DtCase& d : kDtypes)
    for (int64_t M : {1, 3, 17})
      for (int64_t N : {1, 7, 130, 257})
        for (int64_t K : {5, 33, 130, 300}) run_case({d.dt, d.scaled, M, N, K});
}

TEST(CpuMatmul, AccumulateAndAllDecodeM) {
  for (const DtCase& d : kDtypes)
    for (int64_t M = 1; M <= 9; ++M) run_case({d.dt, d.scaled, M, 37, 161, true});
}

TEST(CpuMatmul, Fp8RowSlices) {
  // A head slice of kv_b_proj: rows start mid scale-block, so (row0 + r) / 128 crosses blocks inside the view.
  for (int64_t M : {1, 4, 12}) {
    run_case({DType::F8_E4M3, true, M, 130, 300, false, false, ops::Precision::F32, 100});
    run_case({DType::F8_E4M3, true, M, 130, 300, false, false, ops::Precision::Fast, 100});
  }
}

TEST(CpuMatmul, Threaded) {
  // Large enough to run on both threads (decode: N split; prefill: several L2 panels, dynamic schedule).
  for (const DtCase& d : kDtypes) {
    run_case({d.dt, d.scaled, 2, 1000, 384});
    run_case({d.dt, d.scaled, 6, 515, 1000, true});
    run_case({d.dt, d.scaled, 33, 300, 1000});
    run_case({d.dt, d.scaled, 3, 1100, 1000, true});  // > 512 KiB of weights in every dtype: decode splits N
  }
}

TEST(CpuMatmul, FastPrecision) {
  for (const DtCase& d : kDtypes)
    for (int64_t M : {1, 5, 19})
      for (int64_t N : {7, 257})
        for (int64_t K : {33, 300}) run_case({d.dt, d.scaled, M, N, K, M == 5, false, ops::Precision::Fast});
  run_case({DType::BF16, false, 40, 600, 700, false, false, ops::Precision::Fast});
  run_case({DType::F8_E4M3, true, 40, 600, 700, true, false, ops::Precision::Fast});
}

TEST(CpuMatmul, WeightKN) {
  for (const DtCase& d : kDtypes)
    for (int64_t M : {1, 3, 17})
      for (int64_t N : {7, 130, 600})
        run_case({d.dt, d.scaled, M, N, 33 + 64 * int64_t(d.scaled), M == 3, true});
  run_case({DType::F8_E4M3, true, 4, 128, 130, false, true, ops::Precision::F32, 70});
  run_case({DType::BF16, false, 4, 128, 130, true, true, ops::Precision::Fast});
}

}  // namespace
}  // namespace ds::test
