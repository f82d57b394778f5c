// SPDX-License-Identifier: MIT
// A read-only memory-mapped file. Pages are read on first use, so files larger than RAM can be opened.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

namespace ds::io {

class MmapFile {
 public:
  // Throws ds::Error naming the path when the file cannot be opened or mapped.
  explicit MmapFile(const std::string& path);
  ~MmapFile();
  MmapFile(const MmapFile&) = delete;
  MmapFile& operator=(const MmapFile&) = delete;

  const uint8_t* data() const { return data_; }
  size_t size() const { return size_; }
  // Drops this process's pages of [p, p + n) (the whole pages inside it) from the mapping: the bytes are no longer
  // needed here (copied elsewhere). Reading them again faults them back in from the file. No-op outside the mapping.
  void release(const void* p, size_t n) const;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  const uint8_t* data_ = nullptr;
  size_t size_ = 0;
};

}  // namespace ds::io
