// SPDX-License-Identifier: MIT
// CUDA error checks that throw ds::Error (host code of this folder only).
#pragma once
#include <cuda_runtime.h>

#include "base/error.h"

// DS_CU(call): a CUDA runtime call that must succeed; names the call and the error.
#define DS_CU(call)                                                                                   \
  do {                                                                                                \
    const cudaError_t ds_cu_err_ = (call);                                                            \
    if (ds_cu_err_ != cudaSuccess)                                                                    \
      ::ds::fail("CUDA error ", cudaGetErrorName(ds_cu_err_), " (", cudaGetErrorString(ds_cu_err_),   \
                 ") in ", #call, " at ", __FILE__, ":", __LINE__);                                    \
  } while (0)

// After a kernel launch: reports launch-configuration errors at once (asynchronous faults surface at sync()).
#define DS_CU_LAUNCHED() DS_CU(cudaGetLastError())
