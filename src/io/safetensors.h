// SPDX-License-Identifier: MIT
// Safetensors reader with the reference implementation's validation (huggingface/safetensors tensor.rs).
//
// Format: u64 little-endian N | N bytes of UTF-8 JSON header | byte buffer.
// Header: {"__metadata__": {str: str}?, "<name>": {"dtype": "BF16", "shape": [..], "data_offsets": [begin, end]}, ...}
// Offsets are relative to the byte buffer. Checked here (reliability.md S1-S8):
//   file >= 8 bytes; 0 < N <= 100,000,000; 8 + N <= file size; header valid UTF-8 JSON object (leading whitespace
//   allowed, trailing 0x20 padding allowed); entries have exactly dtype/shape/data_offsets; known dtype; integer
//   non-negative dims and offsets; no duplicate names; __metadata__ a string->string map; prod(shape)*dtype bits
//   computed with overflow checks, a whole number of bytes, equal to end - begin; sorted ranges contiguous from 0
//   with no gaps or overlaps; last end == buffer size exactly.
// Decisions beyond the reference: duplicate JSON keys, unknown entry fields, a UTF-8 byte-order mark, an entry
// that is not an object, and a "__metadata__" value that is not a string->string object (null included) are
// errors. Zero-size tensors may share an offset with a neighbour (the reference accepts it; they cover no bytes).
// Dims must be <= 2^63-1 so they fit int64_t. Tensor order in tensors() is file (offset) order.
// Alignment (beyond the reference): a non-empty tensor's data must start, in the file, at a multiple of its element
// size, since kernels read it in place through typed pointers. The safetensors library always writes files so (it
// pads the header to a multiple of 8 and orders tensors by dtype size); other files are rejected, not copied.
#pragma once
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "base/dtype.h"
#include "io/mmap_file.h"

namespace ds::io {

struct TensorInfo {
  std::string name;
  DType dtype = DType::F32;
  std::vector<int64_t> shape;
  uint64_t begin = 0;  // byte range in the buffer, [begin, end)
  uint64_t end = 0;
  const uint8_t* data = nullptr;  // points into the mapping
  int64_t numel() const;
  uint64_t nbytes() const { return end - begin; }
};

class SafetensorsFile {
 public:
  // Maps and validates `path`; throws ds::Error naming the file (and tensor) on any violation.
  static std::unique_ptr<SafetensorsFile> open(const std::string& path);
  // Validates an in-memory image (used by tests and fuzzing); `data` must outlive the object.
  static std::unique_ptr<SafetensorsFile> parse(const uint8_t* data, size_t size, const std::string& label);

  const std::string& path() const { return path_; }
  const std::vector<TensorInfo>& tensors() const { return tensors_; }
  const TensorInfo* find(const std::string& name) const;  // nullptr when absent
  const std::map<std::string, std::string>& metadata() const { return metadata_; }
  // Drops the mapped pages of [p, p + n) (see MmapFile::release); no-op for parsed in-memory images.
  void release(const void* p, size_t n) const {
    if (file_) file_->release(p, n);
  }

 private:
  std::string path_;
  std::unique_ptr<MmapFile> file_;
  std::vector<TensorInfo> tensors_;
  std::map<std::string, size_t> index_;
  std::map<std::string, std::string> metadata_;
};

}  // namespace ds::io
