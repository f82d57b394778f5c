// SPDX-License-Identifier: MIT
// CUDA matmul vs the reference: every weight dtype (FP8 with and without block scales, partial blocks, row slices),
// odd shapes, strides, accumulate, w_kn, the small-M (decode) and tiled (M > 8) kernels, F32 and Fast precision.
#include "base/error.h"
#include "ops/cuda_harness.h"

namespace ds::test {
namespace {

// F32: fp32 FMA sums vs the fp64 reference. Fast: x rounded to bf16 exactly as ref does; only sum order differs,
// so Fast is held to the same budget as F32.
const Budget kF32{1e-10, 2e-5};

struct MmCase {
  DType dt;
  bool scaled;
  int64_t M, N, K;
  bool accumulate = false;
  bool w_kn = false;
  ops::Precision prec = ops::Precision::F32;
  int64_t slice0 = 0;  // > 0: W is rows [slice0, slice0 + rows) of a taller parent (row0 != 0)
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
  const int64_t ldx = c.K + 3, ldy = c.N + 5;
  const std::vector<float> x = rng.vec(size_t(c.M * ldx)), y0 = rng.vec(size_t(c.M * ldy));
  check_cuda(name(c), kF32, [&](ops::Backend& be, Mem& mem) {
    // The parent is prepared (uploaded) whole, then sliced: the way the model slices kv_b_proj per head.
    const WeightView parent = mem.w(w.view);
    ops::MatmulParams p;
    p.x = mem.put(x); p.ldx = ldx; p.w = c.slice0 ? parent.row_slice(c.slice0, wr) : parent; p.w_kn = c.w_kn;
    p.y = mem.put(y0); p.ldy = ldy;
    p.M = c.M; p.N = c.N; p.K = c.K; p.accumulate = c.accumulate; p.precision = c.prec;
    be.matmul(p);
    const std::vector<float> y = mem.get(p.y, y0.size());
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

TEST_F(CudaOps, MatmulOddShapesAllDtypes) {
  for (const DtCase& d : kDtypes)
    for (int64_t M : {1, 3, 8, 9, 70})  // 1..8: matvec kernel; 9, 70: tiled (partial tiles)
      for (int64_t N : {1, 7, 130})
        for (int64_t K : {5, 33, 300}) run_case({d.dt, d.scaled, M, N, K});
}

TEST_F(CudaOps, MatmulAccumulateFastAndSlices) {
  for (const DtCase& d : kDtypes)
    for (int64_t M : {1, 5, 19}) {
      run_case({d.dt, d.scaled, M, 37, 161, true});
      run_case({d.dt, d.scaled, M, 257, 300, M == 5, false, ops::Precision::Fast});
    }
  for (int64_t M : {1, 4, 12}) {  // head slices of kv_b_proj: rows start mid scale-block
    run_case({DType::F8_E4M3, true, M, 130, 300, false, false, ops::Precision::F32, 100});
    run_case({DType::F8_E4M3, true, M, 130, 300, false, false, ops::Precision::Fast, 100});
  }
}

TEST_F(CudaOps, MatmulWeightKN) {
  for (const DtCase& d : kDtypes)
    for (int64_t M : {1, 3, 17})
      for (int64_t N : {7, 130, 600}) run_case({d.dt, d.scaled, M, N, 33 + 64 * int64_t(d.scaled), M == 3, true});
  run_case({DType::F8_E4M3, true, 4, 128, 130, false, true, ops::Precision::F32, 70});
  run_case({DType::BF16, false, 4, 128, 130, true, true, ops::Precision::Fast});
}

TEST_F(CudaOps, WeightsUploadOnceAndHostPointersAreRejected) {
  auto be = cuda::make_cuda_backend(0);
  Rng rng(3);
  OwnedWeight w = make_weight(rng, DType::BF16, 64, 32);
  const WeightView a = be->prepare_weight(w.view), b = be->prepare_weight(w.view);
  EXPECT_EQ(a.data, b.data) << "the same host weight must be uploaded once";
  EXPECT_NE(a.data, w.view.data);
  EXPECT_EQ(be->prepare_weight(a).data, a.data) << "a prepared view is returned unchanged";
  std::vector<float> x(32), y(64);
  ops::MatmulParams p;
  p.x = x.data(); p.ldx = 32; p.w = a; p.y = y.data(); p.ldy = 64; p.M = 1; p.N = 64; p.K = 32;
  EXPECT_THROW(be->matmul(p), ds::Error) << "host activations must be rejected with a ds::Error";
}

}  // namespace
}  // namespace ds::test
