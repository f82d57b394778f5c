// SPDX-License-Identifier: MIT
// Streaming GGUF v3 writer: the inverse of io/gguf.h's reader, for files written one tensor at a time.
//
//   magic "GGUF" | u32 3 | u64 n_tensors | u64 n_kv | n_kv × (string key, u32 type, value)
//   | n_tensors × (string name, u32 n_dims, n_dims × u64 ne, u32 ggml type, u64 offset) | zero padding to the alignment
//   | tensor data, each tensor's bytes followed by zero padding to the alignment (the last one too, as ggml and
//     gguf-py write it)
//
// The header needs every tensor's size and offset, which follow from shapes and types alone: declare the metadata
// and the tensors (add_tensor), call write_header, then hand each tensor's bytes over in declaration order, in as
// many pieces as convenient (write_data). Only the bytes of the current piece are held, never the model. finish()
// checks that every tensor got exactly its bytes and closes the file.
//
// Everything the reader checks is checked here before a byte is written (keys non-empty, <= 65535 bytes of printable
// ASCII, unique; tensor names 1-63 bytes of valid UTF-8, unique; 1-4 dims each >= 1; ne[0] a multiple of the type's
// block; known ggml type ids; no nested arrays), so what this writes the reader accepts. Errors throw ds::Error
// naming the file (and the key or tensor).
#pragma once
#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include "base/dtype.h"
#include "io/gguf.h"

namespace ds::io {

// The ggml type id of a weight format (F32 0, F16 1, Q4_0 2, ..., BF16 30); throws for types without one.
uint32_t ggml_type_of(DType t);

class GgufWriter {
 public:
  // `path`: the file to create (truncated if it exists) when write_header is called. `alignment`: a power of two;
  // other than 32 it is recorded as general.alignment.
  explicit GgufWriter(std::string path, uint32_t alignment = 32);
  ~GgufWriter();
  GgufWriter(const GgufWriter&) = delete;
  GgufWriter& operator=(const GgufWriter&) = delete;

  // Metadata, kept in insertion order; setting a key again replaces its value where it was.
  void set(const std::string& key, GgufValue v);
  void set_u8(const std::string& key, uint8_t v);
  void set_i8(const std::string& key, int8_t v);
  void set_u16(const std::string& key, uint16_t v);
  void set_i16(const std::string& key, int16_t v);
  void set_u32(const std::string& key, uint32_t v);
  void set_i32(const std::string& key, int32_t v);
  void set_u64(const std::string& key, uint64_t v);
  void set_i64(const std::string& key, int64_t v);
  void set_f32(const std::string& key, float v);
  void set_f64(const std::string& key, double v);
  void set_bool(const std::string& key, bool v);
  void set_string(const std::string& key, const std::string& v);
  void set_strings(const std::string& key, std::vector<std::string> v);
  // Arrays of integers (elem: U8 .. I64) or floats (elem: F32 or F64); values are checked to fit the element type.
  void set_ints(const std::string& key, GgufType elem, std::vector<int64_t> v);
  void set_floats(const std::string& key, GgufType elem, std::vector<double> v);
  void set_bools(const std::string& key, const std::vector<bool>& v);
  void remove(const std::string& key);
  const GgufValue* find(const std::string& key) const;
  const std::vector<std::pair<std::string, GgufValue>>& metadata() const { return kv_; }

  // A tensor of ggml dims `ne` (ne[0] the contiguous one) and ggml type id `type`, placed after the previous one.
  void add_tensor(const std::string& name, std::vector<int64_t> ne, uint32_t type);
  size_t num_tensors() const { return tensors_.size(); }
  uint64_t tensor_bytes(size_t i) const { return tensors_[i].nbytes; }

  // Creates the file and writes everything up to the first tensor's data.
  void write_header();
  // The next `n` bytes of tensor data (of the current tensor, continuing into the next ones).
  void write_data(const void* p, size_t n);
  // Index of the tensor whose bytes write_data expects next (num_tensors() once all are written).
  size_t current_tensor() const { return cur_; }
  // Checks that every tensor was written in full, flushes and closes; throws naming the file otherwise.
  void finish();
  // Bytes of the whole file (known once the tensors are declared).
  uint64_t file_bytes() const;
  const std::string& path() const { return path_; }

 private:
  struct Tensor {
    std::string name;
    std::vector<int64_t> ne;
    uint32_t type;
    uint64_t offset, nbytes;
  };
  void put(const void* p, size_t n);
  void pad(uint64_t n);
  uint64_t header_bytes() const;
  void check_key(const std::string& key) const;

  std::string path_;
  uint32_t alignment_;
  std::vector<std::pair<std::string, GgufValue>> kv_;
  std::vector<Tensor> tensors_;
  uint64_t data_bytes_ = 0;  // the data section, every tensor padded
  std::FILE* f_ = nullptr;
  bool header_done_ = false, finished_ = false;
  size_t cur_ = 0;        // tensor being written
  uint64_t cur_done_ = 0;  // its bytes written so far
};

}  // namespace ds::io
