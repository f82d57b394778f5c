// SPDX-License-Identifier: MIT
// Anonymous zero-filled memory aligned to 2 MiB and advised for transparent huge pages (Linux MADV_HUGEPAGE; best
// effort: where the kernel gives 4 KiB pages the memory works the same, only the TLB reach is smaller); buffers under
// 1 MiB are only page-aligned. Used for what a decode step streams: the CPU backend's copy of the weights, random
// bench weights, the bandwidth probe.
#pragma once
#include <cstddef>
#include <cstdint>

namespace ds {

class HugePageBuffer {
 public:
  HugePageBuffer() = default;
  // Throws ds::Error (naming `what` and the size) when the memory cannot be mapped.
  explicit HugePageBuffer(size_t bytes, const char* what = "buffer");
  ~HugePageBuffer();
  HugePageBuffer(HugePageBuffer&& o) noexcept { *this = static_cast<HugePageBuffer&&>(o); }
  HugePageBuffer& operator=(HugePageBuffer&& o) noexcept;
  HugePageBuffer(const HugePageBuffer&) = delete;
  HugePageBuffer& operator=(const HugePageBuffer&) = delete;

  uint8_t* data() const { return data_; }
  size_t size() const { return size_; }
  // Bytes of this buffer on huge pages now (from /proc/self/smaps; 0 where the kernel does not say).
  uint64_t huge_bytes() const;

 private:
  void* map_ = nullptr;
  size_t map_size_ = 0;
  uint8_t* data_ = nullptr;
  size_t size_ = 0;
};

}  // namespace ds
