// SPDX-License-Identifier: MIT
// Helpers for the io tests: build safetensors images in memory, temp folders, and error-message assertions.
#pragma once
#include <gtest/gtest.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <initializer_list>
#include <string>
#include <vector>

#include "base/error.h"

namespace ds::io::test {

// 8-byte little-endian length `n`, then `header` verbatim, then `data_bytes` bytes of pattern data.
inline std::vector<uint8_t> st_raw(uint64_t n, const std::string& header, size_t data_bytes) {
  std::vector<uint8_t> img(8);
  for (int i = 0; i < 8; ++i) img[i] = uint8_t(n >> (8 * i));
  img.insert(img.end(), header.begin(), header.end());
  for (size_t i = 0; i < data_bytes; ++i) img.push_back(uint8_t(i * 7 + 1));
  return img;
}

// A well-formed image: correct length prefix for `header`, followed by `data_bytes` of data. The header is padded
// with spaces to a multiple of 8 bytes, as the safetensors library writes it, so the data is aligned.
inline std::vector<uint8_t> st_image(std::string header, size_t data_bytes) {
  while (header.size() % 8) header += ' ';
  return st_raw(header.size(), header, data_bytes);
}

// One header entry: "name": {"dtype": .., "shape": [..], "data_offsets": [b, e]} (shape/offsets given as text
// so tests can put anything there).
inline std::string entry(const std::string& name, const std::string& dtype, const std::string& shape,
                         const std::string& offsets) {
  return "\"" + name + "\":{\"dtype\":\"" + dtype + "\",\"shape\":" + shape + ",\"data_offsets\":" + offsets + "}";
}

// A valid single-shard image holding F32 [2] tensors with the given names, in order.
inline std::vector<uint8_t> st_f32_pairs(const std::vector<std::string>& names) {
  std::string h = "{";
  for (size_t i = 0; i < names.size(); ++i) {
    if (i) h += ",";
    h += entry(names[i], "F32", "[2]", "[" + std::to_string(8 * i) + "," + std::to_string(8 * i + 8) + "]");
  }
  h += "}";
  return st_image(h, 8 * names.size());
}

inline void write_file(const std::string& path, const std::vector<uint8_t>& bytes) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f.write(reinterpret_cast<const char*>(bytes.data()), std::streamsize(bytes.size()));
  ASSERT_TRUE(f.good()) << path;
}

inline void write_text(const std::string& path, const std::string& text) {
  write_file(path, std::vector<uint8_t>(text.begin(), text.end()));
}

// A fresh folder under the system temp dir, removed with its contents on destruction.
class TempDir {
 public:
  TempDir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "ds_io_test_XXXXXX").string();
    if (::mkdtemp(tmpl.data()) == nullptr) std::abort();
    path_ = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }
  std::string operator/(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

inline std::string fixture(const std::string& rel) { return std::string(DS_SOURCE_DIR) + "/tests/fixtures/" + rel; }

// Runs `fn`, expects a ds::Error whose message contains every needle.
template <typename F>
void expect_error(F&& fn, std::initializer_list<std::string> needles) {
  try {
    fn();
    ADD_FAILURE() << "expected ds::Error, nothing was thrown";
  } catch (const ds::Error& e) {
    const std::string msg = e.what();
    for (const std::string& n : needles) EXPECT_NE(msg.find(n), std::string::npos) << "'" << n << "' not in: " << msg;
  }
}

}  // namespace ds::io::test

#define EXPECT_DS_ERROR(stmt, ...)                              \
  do {                                                          \
    SCOPED_TRACE(#stmt);                                        \
    ::ds::io::test::expect_error([&] { stmt; }, {__VA_ARGS__}); \
  } while (0)
