// SPDX-License-Identifier: MIT
// GGUF reader (llama.cpp's model container, versions 2 and 3), memory-mapped, with every field checked against the
// file before it is used (reliability.md G1-G14):
//
//   magic "GGUF" | u32 version | u64 n_tensors | u64 n_kv | n_kv × (string key, u32 type, value)
//   | n_tensors × (string name, u32 n_dims, n_dims × u64 ne, u32 ggml type, u64 offset) | padding | data section
//
// Strings are u64 length + bytes; arrays are u32 element type + u64 count + elements. All little-endian.
// Checked: truncation anywhere (G1); magic, version 2 or 3, a byte-swapped (big-endian) file named as such (G2);
// counts against the bytes left, so no count drives an allocation the file cannot back (G3, G8); keys non-empty,
// <= 65535 bytes, printable ASCII, unique (G4, G5); value types known, arrays of arrays rejected (depth 1, a
// documented decision: no DeepSeek or llama.cpp key uses them), bools 0 or 1 (G5, G6); well-known keys with the
// type the spec gives them (`general.alignment` u32, `split.*` u16 / i32 as llama.cpp writes them) (G6);
// alignment a power of two in [1, 2^30] (G7); each string <= 64 MiB and all metadata <= 256 MiB (G8); tensor names
// 1-63 bytes of valid UTF-8, unique (G9); 1-4 dims, each 1..2^63-1, element and byte counts without overflow (G10);
// ggml type ids known and not removed (G11); ne[0] a multiple of the type's block size (G12); offsets aligned,
// in order and contiguous (each tensor at the padded end of the one before, as ggml writes them), inside the file
// (G13). Bytes after the last tensor are ignored (G14: a writer may pad the file; the data section only has to
// hold every tensor). A file without tensors (vocabulary-only) may end right after its metadata, unpadded.
//
// Split models (`name-00001-of-00003.gguf`, keys split.no / split.count / split.tensors.count): GgufModel opens
// every part from the first one's name and checks that the parts agree and that no tensor name repeats.
#pragma once
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "io/mmap_file.h"

namespace ds::io {

// GGUF metadata value types (gguf spec).
enum class GgufType : uint32_t {
  U8 = 0, I8 = 1, U16 = 2, I16 = 3, U32 = 4, I32 = 5, F32 = 6, BOOL = 7, STRING = 8, ARRAY = 9, U64 = 10, I64 = 11,
  F64 = 12,
};
const char* gguf_type_name(GgufType t);

struct GgufValue {
  GgufType type = GgufType::U8;
  GgufType elem = GgufType::U8;  // arrays: the element type
  // Scalars: integers (and bools) in i (signed types) or u (unsigned), floats in f, strings in s.
  int64_t i = 0;
  uint64_t u = 0;
  double f = 0;
  std::string s;
  // Arrays: strings in strs, integers in ints (unsigned values above 2^63-1 are rejected), floats in floats.
  std::vector<std::string> strs;
  std::vector<int64_t> ints;
  std::vector<double> floats;

  bool is_int() const;                   // any integer type (not bool)
  size_t size() const;                   // array length (0 for scalars)
};

// ggml tensor types: block size (elements) and bytes per block. Ids that ggml removed or never assigned give null.
struct GgmlTypeInfo {
  uint32_t id;
  const char* name;
  int32_t block;  // elements per block
  int32_t bytes;  // bytes per block
};
const GgmlTypeInfo* ggml_type_info(uint32_t id);

struct GgufTensor {
  std::string name;
  uint32_t type = 0;            // ggml type id (ggml_type_info(type) is non-null)
  std::vector<int64_t> ne;      // ggml order: ne[0] is the contiguous (fastest) dimension
  uint64_t offset = 0;          // in the data section
  uint64_t nbytes = 0;
  const uint8_t* data = nullptr;
  int file = 0;                 // index of the part (split models)
  int64_t numel() const;
};

class GgufFile {
 public:
  // Maps and validates `path`; throws ds::Error naming the file and the field on any violation.
  static std::unique_ptr<GgufFile> open(const std::string& path);
  // Validates an in-memory image (tests, fuzzing); `data` must outlive the object.
  static std::unique_ptr<GgufFile> parse(const uint8_t* data, size_t size, const std::string& label);

  const std::string& path() const { return path_; }
  uint32_t version() const { return version_; }
  uint32_t alignment() const { return alignment_; }
  uint64_t data_offset() const { return data_offset_; }  // where the data section starts in the file
  const std::map<std::string, GgufValue>& metadata() const { return kv_; }
  const std::vector<GgufTensor>& tensors() const { return tensors_; }
  const GgufValue* find(const std::string& key) const;        // nullptr when absent
  const GgufTensor* tensor(const std::string& name) const;    // nullptr when absent
  void release(const void* p, size_t n) const {
    if (file_) file_->release(p, n);
  }

 private:
  void parse_all(const uint8_t* data, size_t size);
  std::string path_;
  std::unique_ptr<MmapFile> file_;
  uint32_t version_ = 0, alignment_ = 32;
  uint64_t data_offset_ = 0;
  std::map<std::string, GgufValue> kv_;
  std::vector<GgufTensor> tensors_;
  std::map<std::string, size_t> index_;
};

// A GGUF model of one file or of every part of a split set. Metadata is the first part's.
class GgufModel {
 public:
  // `path`: a .gguf file; a name ending in -00001-of-0000N.gguf opens all N parts.
  static std::unique_ptr<GgufModel> open(const std::string& path);
  const std::vector<std::unique_ptr<GgufFile>>& parts() const { return parts_; }
  const GgufFile& first() const { return *parts_.front(); }
  const GgufValue* find(const std::string& key) const { return first().find(key); }
  const std::vector<const GgufTensor*>& tensors() const { return tensors_; }
  const GgufTensor* tensor(const std::string& name) const;

  // Typed metadata access for loaders: the key must exist with an integer / float / string type, else ds::Error
  // naming the file, the key, what was expected and what was found. The *_or forms return `def` when absent.
  int64_t get_int(const std::string& key) const;
  int64_t get_int_or(const std::string& key, int64_t def) const;
  double get_float(const std::string& key) const;
  double get_float_or(const std::string& key, double def) const;
  std::string get_string(const std::string& key) const;

 private:
  std::vector<std::unique_ptr<GgufFile>> parts_;
  std::vector<const GgufTensor*> tensors_;
  std::map<std::string, const GgufTensor*> index_;
};

// The part paths of a split set named like `prefix-00001-of-00004.gguf` (all N), or just {path}.
std::vector<std::string> gguf_split_paths(const std::string& path);

}  // namespace ds::io
