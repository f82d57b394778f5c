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

// Scratch that only grows, for buffers a hot path reuses call after call: large ones on huge pages, so the first
// calls at a new size fault in a few 2 MiB pages instead of thousands of 4 KiB ones (page faults are costly in
// virtual machines: a first 512-token prefill spent ~30% of its time in them). Contents are not kept when it grows:
// every user writes what it reads.
// Under AddressSanitizer both this and the CPU backend's large buffers come from the heap instead, so that ASan
// still sees every access (kUseHeapForScratch).
class GrowBuffer {
 public:
  GrowBuffer() = default;
  ~GrowBuffer();
  GrowBuffer(const GrowBuffer&) = delete;
  GrowBuffer& operator=(const GrowBuffer&) = delete;
  template <typename T>
  T* get(size_t n) {
    return reinterpret_cast<T*>(ensure(n * sizeof(T)));
  }

 private:
  uint8_t* ensure(size_t bytes);
  HugePageBuffer buf_;
  void* heap_ = nullptr;  // under ASan
  size_t heap_size_ = 0;
};

#if defined(__SANITIZE_ADDRESS__)
constexpr bool kUseHeapForScratch = true;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
constexpr bool kUseHeapForScratch = true;
#else
constexpr bool kUseHeapForScratch = false;
#endif
#else
constexpr bool kUseHeapForScratch = false;
#endif

}  // namespace ds
