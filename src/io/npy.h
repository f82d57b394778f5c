// SPDX-License-Identifier: MIT
// NumPy .npy format 1.0/2.0/3.0 read, 1.0 write: little-endian, C order. Reads '<f4', '<f8', '<i8', '<i4'
// (and '|u1', '<u2' as raw bytes). The data must fill the file exactly after the header.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace ds::io {

struct NpyArray {
  std::vector<int64_t> shape;
  std::string descr;          // e.g. "<f4"
  std::vector<uint8_t> data;  // raw little-endian bytes
  std::string source;         // the file it was read from (for error messages); empty if built in memory
  int64_t numel() const;
  // Converting accessors; throw ds::Error naming the source and descr if the dtype cannot be converted.
  std::vector<float> to_f32() const;
  std::vector<int64_t> to_i64() const;
};

// Throws ds::Error naming the path on any malformed header or size mismatch.
NpyArray npy_read(const std::string& path);
void npy_write_f32(const std::string& path, const float* data, const std::vector<int64_t>& shape);
void npy_write_i64(const std::string& path, const int64_t* data, const std::vector<int64_t>& shape);

}  // namespace ds::io
