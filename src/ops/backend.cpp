// SPDX-License-Identifier: MIT
#include "ops/backend.h"

#include <cstdlib>
#include <cstring>
#include <new>

#include "base/huge_pages.h"

namespace ds::ops {

namespace {
// Zero-filled. From 1 MiB up on huge pages (base/huge_pages.h: activations and caches fault in 2 MiB at a time, and
// untouched pages cost nothing), below (and under ASan) from the heap.
class HostBuffer final : public Buffer {
 public:
  explicit HostBuffer(size_t bytes) : size_(bytes) {
    const size_t rounded = (bytes + 63) / 64 * 64;
    if (rounded >= (size_t(1) << 20) && !kUseHeapForScratch) {
      big_ = HugePageBuffer(rounded, "host buffer");
      ptr_ = big_.data();
      return;
    }
    ptr_ = rounded ? std::aligned_alloc(64, rounded) : nullptr;
    if (rounded && !ptr_) throw std::bad_alloc();
    if (ptr_) std::memset(ptr_, 0, rounded);
  }
  ~HostBuffer() override {
    if (!big_.data()) std::free(ptr_);
  }
  void* data() override { return ptr_; }
  size_t size() const override { return size_; }

 private:
  HugePageBuffer big_;
  void* ptr_ = nullptr;
  size_t size_ = 0;
};
}  // namespace

std::unique_ptr<Buffer> host_alloc(size_t bytes) { return std::make_unique<HostBuffer>(bytes); }

}  // namespace ds::ops
