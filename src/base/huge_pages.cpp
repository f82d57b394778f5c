// SPDX-License-Identifier: MIT
#include "base/huge_pages.h"

#include <sys/mman.h>

#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>

#include "base/error.h"

namespace ds {

namespace {
constexpr size_t kHuge = size_t(2) << 20;
}

HugePageBuffer::HugePageBuffer(size_t bytes, const char* what) {
  if (bytes == 0) return;
  size_ = bytes;
  // Under half a huge page a buffer keeps 4 KiB pages: a 2 MiB page each would multiply small tensors' memory (an FP8
  // scale grid is a few hundred bytes).
  const bool huge = bytes >= kHuge / 2;
  map_size_ = huge ? (bytes + kHuge - 1) / kHuge * kHuge + kHuge : bytes;  // room to align the start
  void* p = ::mmap(nullptr, map_size_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (p == MAP_FAILED) {
    const int e = errno;
    map_size_ = size_ = 0;
    fail("cannot allocate ", bytes, " bytes for the ", what, ": ", std::strerror(e));
  }
  map_ = p;
  if (!huge) {
    data_ = static_cast<uint8_t*>(p);
    return;
  }
  data_ = reinterpret_cast<uint8_t*>((reinterpret_cast<uintptr_t>(p) + kHuge - 1) & ~uintptr_t(kHuge - 1));
  (void)::madvise(data_, (bytes + kHuge - 1) / kHuge * kHuge, MADV_HUGEPAGE);
}

uint8_t* GrowBuffer::ensure(size_t bytes) {
  if (kUseHeapForScratch) {
    if (heap_size_ < bytes) {
      std::free(heap_);
      heap_size_ = (bytes + 63) / 64 * 64;
      heap_ = std::aligned_alloc(64, heap_size_);
      if (!heap_) fail("cannot allocate ", bytes, " bytes of scratch");
    }
    return static_cast<uint8_t*>(heap_);
  }
  if (buf_.size() < bytes) {
    buf_ = HugePageBuffer();  // the old pages go back first
    buf_ = HugePageBuffer(bytes + bytes / 4, "scratch");
  }
  return buf_.data();
}

GrowBuffer::~GrowBuffer() { std::free(heap_); }

HugePageBuffer::~HugePageBuffer() {
  if (map_) ::munmap(map_, map_size_);
}

HugePageBuffer& HugePageBuffer::operator=(HugePageBuffer&& o) noexcept {
  if (this != &o) {
    if (map_) ::munmap(map_, map_size_);
    map_ = o.map_; map_size_ = o.map_size_; data_ = o.data_; size_ = o.size_;
    o.map_ = nullptr; o.map_size_ = 0; o.data_ = nullptr; o.size_ = 0;
  }
  return *this;
}

uint64_t HugePageBuffer::huge_bytes() const {
  if (!map_) return 0;
  const uintptr_t lo = reinterpret_cast<uintptr_t>(map_), hi = lo + map_size_;
  std::ifstream f("/proc/self/smaps");
  std::string line;
  uint64_t total = 0;
  bool ours = false;
  while (std::getline(f, line)) {
    const size_t dash = line.find('-');
    if (!line.empty() && std::isxdigit(static_cast<unsigned char>(line[0])) && dash != std::string::npos &&
        dash < line.find(' ')) {
      const uintptr_t a = std::stoull(line.substr(0, dash), nullptr, 16);
      const uintptr_t b = std::stoull(line.substr(dash + 1, line.find(' ') - dash - 1), nullptr, 16);
      ours = a < hi && b > lo;
    } else if (ours && line.rfind("AnonHugePages:", 0) == 0) {
      total += std::stoull(line.substr(14)) * 1024;
    }
  }
  return total;
}

}  // namespace ds
