// SPDX-License-Identifier: MIT
// Device memory of one CUDA backend: zeroed activation buffers from the stream-ordered allocator, stream-ordered
// scratch for ops, and the weight store (each host weight uploaded once, FP8 block scales beside it). Every range
// it hands out is recorded so ops can reject host pointers with a clear error instead of a device fault.
#pragma once
#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <vector>

#include "base/weight.h"
#include "ops/backend.h"

namespace ds::cuda {

// The stream and the address book shared by a backend and the buffers it handed out (buffers may outlive it).
struct StreamContext {
  int device = 0;
  cudaStream_t stream = nullptr;
  mutable std::mutex mu;               // ranges: buffers may be freed from another thread than the engine's
  std::map<uintptr_t, size_t> ranges;  // device start -> bytes, for buffers and weights
  ~StreamContext();
  void add_range(const void* p, size_t n);
  void remove_range(const void* p);
  bool contains(const void* p, size_t n) const;  // [p, p+n) inside one recorded range (caller holds no lock)
};

class DeviceMemory {
 public:
  explicit DeviceMemory(std::shared_ptr<StreamContext> ctx) : ctx_(std::move(ctx)) {}
  ~DeviceMemory();
  cudaStream_t stream() const { return ctx_->stream; }

  // Zero-initialised device buffer (stream-ordered: valid for work queued after this call).
  std::unique_ptr<ops::Buffer> alloc(size_t bytes);

  // Stream-ordered scratch for one op: allocated now, freed (stream-ordered) when the Scratch goes out of scope,
  // after the op's kernels are queued. Never synchronises.
  class Scratch {
   public:
    Scratch(cudaStream_t s, size_t bytes);
    ~Scratch();
    Scratch(const Scratch&) = delete;
    Scratch& operator=(const Scratch&) = delete;
    void* data() const { return ptr_; }

   private:
    cudaStream_t s_;
    void* ptr_ = nullptr;
  };

  // The device view of a host weight, uploading its bytes (and its scale grid) the first time. Views that already
  // point into this backend's memory are returned unchanged; slices of an uploaded tensor reuse the upload.
  WeightView prepare_weight(const WeightView& w);

  // Throws ds::Error naming `op` and `what` unless [p, p + bytes) lies in memory this backend allocated.
  void check_device(const void* p, size_t bytes, const char* op, const char* what) const;
  void check_weight(const WeightView& w, const char* op) const;

 private:
  struct Upload {
    uintptr_t host = 0;
    size_t bytes = 0;
    void* dev = nullptr;
  };
  const void* upload_host_range(const void* host, size_t bytes);

  std::shared_ptr<StreamContext> ctx_;
  std::map<uintptr_t, Upload> uploads_;  // host start -> its device copy
  std::vector<Upload> retired_;          // superseded copies still referenced by earlier views
};

}  // namespace ds::cuda
