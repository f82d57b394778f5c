// SPDX-License-Identifier: MIT
#include "backend/cuda/device_memory.h"

#include "backend/cuda/check.h"
#include "base/dtype.h"

namespace ds::cuda {

StreamContext::~StreamContext() {
  if (stream) cudaStreamDestroy(stream);  // no throw in a destructor; work still queued completes first
}

void StreamContext::add_range(const void* p, size_t n) {
  std::lock_guard<std::mutex> lock(mu);
  ranges[reinterpret_cast<uintptr_t>(p)] = n;
}

void StreamContext::remove_range(const void* p) {
  std::lock_guard<std::mutex> lock(mu);
  ranges.erase(reinterpret_cast<uintptr_t>(p));
}

bool StreamContext::contains(const void* p, size_t n) const {
  const uintptr_t a = reinterpret_cast<uintptr_t>(p);
  std::lock_guard<std::mutex> lock(mu);
  auto it = ranges.upper_bound(a);
  if (it == ranges.begin()) return false;
  --it;
  return a >= it->first && a + n <= it->first + it->second;
}

namespace {
class DeviceBuffer final : public ops::Buffer {
 public:
  DeviceBuffer(std::shared_ptr<StreamContext> ctx, size_t bytes) : ctx_(std::move(ctx)), size_(bytes) {
    if (!bytes) return;
    DS_CU(cudaSetDevice(ctx_->device));
    DS_CU(cudaMallocAsync(&ptr_, bytes, ctx_->stream));
    DS_CU(cudaMemsetAsync(ptr_, 0, bytes, ctx_->stream));
    ctx_->add_range(ptr_, bytes);
  }
  ~DeviceBuffer() override {
    if (!ptr_) return;
    ctx_->remove_range(ptr_);
    cudaFreeAsync(ptr_, ctx_->stream);  // stream-ordered: queued kernels that use it finish first
  }
  void* data() override { return ptr_; }
  size_t size() const override { return size_; }

 private:
  std::shared_ptr<StreamContext> ctx_;
  void* ptr_ = nullptr;
  size_t size_ = 0;
};
}  // namespace

DeviceMemory::~DeviceMemory() {
  for (auto& [host, u] : uploads_) retired_.push_back(u);
  for (const Upload& u : retired_) {
    ctx_->remove_range(u.dev);
    cudaFree(u.dev);
  }
}

std::unique_ptr<ops::Buffer> DeviceMemory::alloc(size_t bytes) { return std::make_unique<DeviceBuffer>(ctx_, bytes); }

DeviceMemory::Scratch::Scratch(cudaStream_t s, size_t bytes) : s_(s) {
  if (bytes) DS_CU(cudaMallocAsync(&ptr_, bytes, s_));
}
DeviceMemory::Scratch::~Scratch() {
  if (ptr_) cudaFreeAsync(ptr_, s_);
}

const void* DeviceMemory::upload_host_range(const void* host, size_t bytes) {
  const uintptr_t a = reinterpret_cast<uintptr_t>(host);
  auto it = uploads_.upper_bound(a);
  if (it != uploads_.begin()) {
    const Upload& u = std::prev(it)->second;
    if (a >= u.host && a + bytes <= u.host + u.bytes) return static_cast<const uint8_t*>(u.dev) + (a - u.host);
  }
  Upload u{a, bytes, nullptr};
  DS_CU(cudaSetDevice(ctx_->device));
  // Weights live for the backend's lifetime: plain cudaMalloc, outside the stream-ordered pool.
  DS_CU(cudaMalloc(&u.dev, bytes));
  // Load time, from pageable (often mmapped) memory: a synchronous copy is the simple and safe choice.
  DS_CU(cudaMemcpy(u.dev, host, bytes, cudaMemcpyHostToDevice));
  ctx_->add_range(u.dev, bytes);
  // A longer range at the same host address (a scale grid seen first through a short slice): keep the old copy
  // alive, since views handed out earlier point into it.
  auto old = uploads_.find(a);
  if (old != uploads_.end()) retired_.push_back(old->second);
  uploads_[a] = u;
  return u.dev;
}

WeightView DeviceMemory::prepare_weight(const WeightView& w) {
  if (!w.data) return w;
  DS_CHECK(!is_block_dtype(w.dtype), "cuda: weights in the ggml block format ", dtype_name(w.dtype),
           " (a quantised GGUF) are not supported by the CUDA backend yet; run them with --backend cpu");
  const size_t bytes = size_t(w.bytes());
  if (ctx_->contains(w.data, bytes)) return w;  // already ours (a prepared view, or a buffer)
  WeightView d = w;
  d.data = upload_host_range(w.data, bytes);
  if (w.scale) {
    // The whole scale grid up to the last block row this view touches (row0 may start mid-grid for slices).
    const int64_t grid_rows = (w.row0 + w.rows + w.block_rows - 1) / w.block_rows;
    const size_t sbytes = size_t(grid_rows * w.scale_cols) * sizeof(float);
    if (!ctx_->contains(w.scale, sbytes)) d.scale = static_cast<const float*>(upload_host_range(w.scale, sbytes));
  }
  return d;
}

void DeviceMemory::check_device(const void* p, size_t bytes, const char* op, const char* what) const {
  DS_CHECK(ctx_->contains(p, bytes), "cuda ", op, ": ", what, " (", bytes, " bytes at ", p,
           ") is not in this backend's device memory (weights must go through Backend::prepare_weight, "
           "activations through Backend::alloc)");
}

void DeviceMemory::check_weight(const WeightView& w, const char* op) const {
  check_device(w.data, size_t(w.bytes()), op, "weight");
  if (w.scale) {
    const int64_t grid_rows = (w.row0 + w.rows + w.block_rows - 1) / w.block_rows;
    check_device(w.scale, size_t(grid_rows * w.scale_cols) * sizeof(float), op, "weight scale grid");
  }
}

}  // namespace ds::cuda
