// SPDX-License-Identifier: MIT
// CPU matmul vs the reference: every weight dtype (FP8 with and without block scales, partial blocks, row slices),
// odd shapes, strides, accumulate, w_kn, decode (M <= 8) and prefill (M > 8) paths, threaded splits, F32 and Fast
// precision. The case itself is shared with the CUDA tests (op_cases.h); the shape lists here follow the CPU kernels.
#include "ops/op_cases.h"

namespace ds::test {
namespace {

void run_case(const MmCase& c) { matmul_case(c, check_op); }

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
