// SPDX-License-Identifier: MIT
// Read-only private mapping of a whole file. Empty files are allowed (data() == nullptr, size() == 0).
// A file truncated by another process while mapped can still raise SIGBUS on access (out of scope, M5).
#include "io/mmap_file.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "base/error.h"

namespace ds::io {

MmapFile::MmapFile(const std::string& path) : path_(path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) fail(path, ": cannot open: ", std::strerror(errno));
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    const int e = errno;
    ::close(fd);
    fail(path, ": cannot stat: ", std::strerror(e));
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    fail(path, ": not a regular file");
  }
  if (st.st_size < 0 || uint64_t(st.st_size) > uint64_t(SIZE_MAX)) {
    ::close(fd);
    fail(path, ": file size ", int64_t(st.st_size), " cannot be mapped");
  }
  size_ = size_t(st.st_size);
  if (size_ == 0) {
    ::close(fd);
    return;
  }
  void* p = ::mmap(nullptr, size_, PROT_READ, MAP_PRIVATE, fd, 0);
  const int e = errno;
  ::close(fd);  // the mapping keeps its own reference to the file
  if (p == MAP_FAILED) {
    size_ = 0;
    fail(path, ": cannot map ", uint64_t(st.st_size), " bytes: ", std::strerror(e));
  }
  // Loading mostly walks tensors in file order; the hint only tunes read-ahead.
  (void)::posix_madvise(p, size_, POSIX_MADV_SEQUENTIAL);
  data_ = static_cast<const uint8_t*>(p);
}

void MmapFile::release(const void* p, size_t n) const {
  const uintptr_t lo = reinterpret_cast<uintptr_t>(data_), hi = lo + size_;
  uintptr_t a = reinterpret_cast<uintptr_t>(p), b = a + n;
  if (data_ == nullptr || a < lo || b > hi || n == 0) return;
  const uintptr_t page = uintptr_t(::sysconf(_SC_PAGESIZE));
  a = (a + page - 1) / page * page;  // whole pages only: neighbours may still be in use
  b = b / page * page;
  if (b > a) (void)::madvise(reinterpret_cast<void*>(a), b - a, MADV_DONTNEED);
}

MmapFile::~MmapFile() {
  if (data_ != nullptr) ::munmap(const_cast<uint8_t*>(data_), size_);
}

}  // namespace ds::io
