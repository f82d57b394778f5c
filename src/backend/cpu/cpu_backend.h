// SPDX-License-Identifier: MIT
// The CPU backend: threaded SIMD kernels (AVX2 / AVX-512 / AVX512-BF16, chosen at run time) over host memory.
#pragma once
#include <memory>

#include "ops/backend.h"

namespace ds::cpu {

// n_threads <= 0: all cores. own_weights: prepare_weight copies every weight into the backend's huge-page memory
// (WeightArena; the fast decode path), else weights are used where they are (a file mapping, random buffers).
std::unique_ptr<ops::Backend> make_cpu_backend(int n_threads = 0, bool own_weights = false);

}  // namespace ds::cpu
