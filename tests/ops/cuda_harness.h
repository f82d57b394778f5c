// SPDX-License-Identifier: MIT
// Harness for the CUDA backend's op tests: the same case runs on ref (the oracle) and on cuda, with inputs placed in
// each backend's own memory through Backend::alloc/upload and weights through prepare_weight, so one op lambda
// serves both. Without a CUDA device every test is skipped visibly (GTEST_SKIP with the runtime's reason).
#pragma once
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "backend/cuda/cuda_backend.h"
#include "ops/op_harness.h"

namespace ds::test {

// Backend memory for one op run; buffers are released with it.
struct Mem {
  ops::Backend& be;
  std::vector<std::unique_ptr<ops::Buffer>> keep;

  template <typename T>
  T* put(const std::vector<T>& v) {
    keep.push_back(be.alloc(v.size() * sizeof(T)));
    be.upload(keep.back()->data(), v.data(), v.size() * sizeof(T));
    return static_cast<T*>(keep.back()->data());
  }
  template <typename T>
  std::vector<T> get(const T* p, size_t n) {
    std::vector<T> v(n);
    be.download(v.data(), p, n * sizeof(T));
    return v;
  }
  WeightView w(const WeightView& v) { return be.prepare_weight(v); }
};

using DevOp = std::function<std::vector<float>(ops::Backend&, Mem&)>;

class CudaOps : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string why;
    if (cuda::device_count(&why) == 0) GTEST_SKIP() << "no CUDA device (" << why << "): CUDA op test not run";
  }
};

// Runs `op` on ref and on cuda (device 0) and compares within `b`.
inline void check_cuda(const std::string& what, const Budget& b, const DevOp& op) {
  std::vector<float> want, got;
  {
    auto ref = ref::make_ref_backend();
    Mem m{*ref, {}};
    want = op(*ref, m);
  }
  {
    auto cu = cuda::make_cuda_backend(0);
    Mem m{*cu, {}};
    got = op(*cu, m);
    cu->sync();
  }
  expect_close(got, want, b, what + " [cuda]");
}

}  // namespace ds::test
