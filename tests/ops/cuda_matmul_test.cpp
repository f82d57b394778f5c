// SPDX-License-Identifier: MIT
// CUDA matmul vs the reference: every weight dtype (FP8 with and without block scales, partial blocks, row slices),
// odd shapes, strides, accumulate, w_kn, the small-M (decode) and tiled (M > 8) kernels, F32 and Fast precision.
// The case is shared with the CPU tests (op_cases.h); the shape lists here follow the CUDA kernels.
#include "base/error.h"
#include "ops/cuda_harness.h"

namespace ds::test {
namespace {

void run_case(const MmCase& c) { matmul_case(c, check_cuda); }

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
