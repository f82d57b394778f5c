// SPDX-License-Identifier: MIT
// The CUDA backend's op test runner: a case (op_cases.h) runs on ref (the oracle) and on cuda, its inputs placed in
// each backend's own memory through Mem. Without a CUDA device every test is skipped visibly (GTEST_SKIP with the
// runtime's reason).
#pragma once
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "backend/cuda/cuda_backend.h"
#include "ops/op_cases.h"

namespace ds::test {

class CudaOps : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string why;
    if (cuda::device_count(&why) == 0) GTEST_SKIP() << "no CUDA device (" << why << "): CUDA op test not run";
  }
};

// The CUDA runner: `op` on ref and on cuda (device 0), compared within `b`.
inline void check_cuda(const std::string& what, const Budget& b, const DevOp& op) {
  std::vector<float> want, got;
  {
    auto ref = ref::make_ref_backend();
    want = run_on(*ref, op);
  }
  {
    auto cu = cuda::make_cuda_backend(0);
    got = run_on(*cu, op);
  }
  expect_close(got, want, b, what + " [cuda]");
}

}  // namespace ds::test
