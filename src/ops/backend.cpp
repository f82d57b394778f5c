// SPDX-License-Identifier: MIT
#include "ops/backend.h"

#include <cstdlib>
#include <cstring>
#include <new>

namespace ds::ops {

namespace {
class HostBuffer final : public Buffer {
 public:
  explicit HostBuffer(size_t bytes) : size_(bytes) {
    const size_t rounded = (bytes + 63) / 64 * 64;
    ptr_ = rounded ? std::aligned_alloc(64, rounded) : nullptr;
    if (rounded && !ptr_) throw std::bad_alloc();
    if (ptr_) std::memset(ptr_, 0, rounded);
  }
  ~HostBuffer() override { std::free(ptr_); }
  void* data() override { return ptr_; }
  size_t size() const override { return size_; }

 private:
  void* ptr_ = nullptr;
  size_t size_ = 0;
};
}  // namespace

std::unique_ptr<Buffer> host_alloc(size_t bytes) { return std::make_unique<HostBuffer>(bytes); }

}  // namespace ds::ops
