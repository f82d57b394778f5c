// SPDX-License-Identifier: MIT
// .npy reader (versions 1.0-3.0) with a strict parser for the header's Python dict literal, and a 1.0 writer
// whose header is padded to 64 bytes as numpy pads it.
#include "io/npy.h"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <sstream>

#include "base/error.h"
#include "io/mmap_file.h"

namespace ds::io {

namespace {

constexpr char kMagic[] = "\x93NUMPY";
constexpr size_t kMaxHeaderBytes = 1u << 20;

int item_size(const std::string& descr) {
  if (descr == "<f8" || descr == "<i8") return 8;
  if (descr == "<f4" || descr == "<i4") return 4;
  if (descr == "<u2") return 2;
  if (descr == "|u1") return 1;
  return 0;
}

// Recursive-descent reader for {'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }.
class HeaderParser {
 public:
  HeaderParser(std::string_view s, const std::string& path) : s_(s), path_(path) {}

  void parse(std::string* descr, std::vector<int64_t>* shape) {
    bool have_descr = false, have_order = false, have_shape = false;
    skip_ws();
    expect('{');
    for (;;) {
      skip_ws();
      if (peek() == '}') break;
      const std::string key = quoted();
      skip_ws();
      expect(':');
      skip_ws();
      if (key == "descr") {
        DS_CHECK(!have_descr, path_, ": npy header repeats 'descr'");
        *descr = quoted();
        have_descr = true;
      } else if (key == "fortran_order") {
        DS_CHECK(!have_order, path_, ": npy header repeats 'fortran_order'");
        if (s_.substr(pos_, 5) == "False")
          pos_ += 5;
        else if (s_.substr(pos_, 4) == "True")
          fail(path_, ": npy fortran_order True is not supported (need C order)");
        else
          bad("True or False");
        have_order = true;
      } else if (key == "shape") {
        DS_CHECK(!have_shape, path_, ": npy header repeats 'shape'");
        tuple(shape);
        have_shape = true;
      } else {
        fail(path_, ": npy header has unknown key '", key, "'");
      }
      skip_ws();
      if (peek() == ',') {
        ++pos_;
        continue;
      }
      if (peek() == '}') break;
      bad("',' or '}'");
    }
    expect('}');
    skip_ws();
    DS_CHECK(pos_ == s_.size(), path_, ": npy header has trailing characters after the dict");
    DS_CHECK(have_descr && have_order && have_shape, path_,
             ": npy header must have 'descr', 'fortran_order' and 'shape'");
  }

 private:
  char peek() const { return pos_ < s_.size() ? s_[pos_] : '\0'; }
  void skip_ws() {
    while (pos_ < s_.size() && (s_[pos_] == ' ' || s_[pos_] == '\t' || s_[pos_] == '\n' || s_[pos_] == '\r')) ++pos_;
  }
  [[noreturn]] void bad(const char* expected) const {
    fail(path_, ": malformed npy header at byte ", pos_, ": expected ", expected);
  }
  void expect(char c) {
    if (peek() != c) {
      const char want[] = {'\'', c, '\'', '\0'};
      bad(want);
    }
    ++pos_;
  }
  std::string quoted() {
    const char q = peek();
    if (q != '\'' && q != '"') bad("a quoted string");
    const size_t end = s_.find(q, pos_ + 1);
    if (end == std::string_view::npos) bad("a closing quote");
    std::string out(s_.substr(pos_ + 1, end - pos_ - 1));
    pos_ = end + 1;
    return out;
  }
  void tuple(std::vector<int64_t>* shape) {
    shape->clear();
    expect('(');
    bool trailing_comma = false;
    for (;;) {
      skip_ws();
      if (peek() == ')') break;
      trailing_comma = false;
      if (peek() < '0' || peek() > '9') bad("a non-negative integer dimension");
      int64_t v = 0;
      while (peek() >= '0' && peek() <= '9') {
        DS_CHECK(!__builtin_mul_overflow(v, int64_t(10), &v) && !__builtin_add_overflow(v, int64_t(peek() - '0'), &v),
                 path_, ": npy shape dimension too large");
        ++pos_;
      }
      if (peek() == 'L') ++pos_;  // Python 2 long literal
      shape->push_back(v);
      skip_ws();
      if (peek() == ',') {
        ++pos_;
        trailing_comma = true;
        continue;
      }
      if (peek() == ')') break;
      bad("',' or ')'");
    }
    // "(3)" is an int in Python, not a tuple; numpy always writes "(3,)".
    if (shape->size() == 1 && !trailing_comma) bad("',' after the only dimension of a 1-D shape");
    expect(')');
  }

  std::string_view s_;
  const std::string& path_;
  size_t pos_ = 0;
};

uint64_t checked_numel(const std::vector<int64_t>& shape, const std::string& path) {
  uint64_t n = 1;
  for (int64_t d : shape) {
    DS_CHECK(d >= 0, path, ": negative dimension ", d);
    DS_CHECK(!__builtin_mul_overflow(n, uint64_t(d), &n), path, ": element count overflows 64 bits");
  }
  DS_CHECK(n <= uint64_t(INT64_MAX), path, ": element count overflows int64");
  return n;
}

std::string shape_tuple(const std::vector<int64_t>& shape) {
  std::ostringstream os;
  os << '(';
  for (size_t i = 0; i < shape.size(); ++i) os << (i ? ", " : "") << shape[i];
  if (shape.size() == 1) os << ',';
  os << ')';
  return os.str();
}

void write_npy(const std::string& path, const char* descr, int itemsize, const void* data,
               const std::vector<int64_t>& shape) {
  const uint64_t n = checked_numel(shape, path);
  uint64_t bytes = 0;
  DS_CHECK(!__builtin_mul_overflow(n, uint64_t(itemsize), &bytes), path, ": array size overflows");
  DS_CHECK(data != nullptr || bytes == 0, path, ": null data for a non-empty array");
  std::string dict =
      std::string("{'descr': '") + descr + "', 'fortran_order': False, 'shape': " + shape_tuple(shape) + ", }";
  // magic(6) + version(2) + length(2) + dict + padding + '\n' is a multiple of 64.
  const size_t unpadded = 10 + dict.size() + 1;
  dict.append((64 - unpadded % 64) % 64, ' ');
  dict.push_back('\n');
  DS_CHECK(dict.size() <= 0xffff, path, ": npy header too long for format 1.0");
  uint8_t pre[10];
  std::memcpy(pre, kMagic, 6);
  pre[6] = 1;
  pre[7] = 0;
  pre[8] = uint8_t(dict.size() & 0xff);
  pre[9] = uint8_t(dict.size() >> 8);

  std::FILE* f = std::fopen(path.c_str(), "wb");
  if (f == nullptr) fail(path, ": cannot create: ", std::strerror(errno));
  bool ok = std::fwrite(pre, 1, sizeof pre, f) == sizeof pre &&
            std::fwrite(dict.data(), 1, dict.size(), f) == dict.size() &&
            (bytes == 0 || std::fwrite(data, 1, size_t(bytes), f) == size_t(bytes));
  const int e = errno;
  ok = (std::fclose(f) == 0) && ok;
  if (!ok) fail(path, ": write failed: ", std::strerror(e ? e : errno));
}

}  // namespace

int64_t NpyArray::numel() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

std::vector<float> NpyArray::to_f32() const {
  const size_t n = size_t(numel());
  std::vector<float> out(n);
  if (descr == "<f4" && data.size() == n * 4) {
    if (n) std::memcpy(out.data(), data.data(), n * 4);
  } else if (descr == "<f8" && data.size() == n * 8) {
    for (size_t i = 0; i < n; ++i) {
      double v;
      std::memcpy(&v, data.data() + i * 8, 8);
      out[i] = float(v);
    }
  } else {
    fail(source.empty() ? std::string("npy array") : source, ": cannot convert dtype '", descr,
         "' to float32 (expected '<f4' or '<f8')");
  }
  return out;
}

std::vector<int64_t> NpyArray::to_i64() const {
  const size_t n = size_t(numel());
  std::vector<int64_t> out(n);
  if (descr == "<i8" && data.size() == n * 8) {
    if (n) std::memcpy(out.data(), data.data(), n * 8);
  } else if (descr == "<i4" && data.size() == n * 4) {
    for (size_t i = 0; i < n; ++i) {
      int32_t v;
      std::memcpy(&v, data.data() + i * 4, 4);
      out[i] = v;
    }
  } else {
    fail(source.empty() ? std::string("npy array") : source, ": cannot convert dtype '", descr,
         "' to int64 (expected '<i8' or '<i4')");
  }
  return out;
}

NpyArray npy_read(const std::string& path) {
  MmapFile f(path);
  const uint8_t* p = f.data();
  const size_t size = f.size();
  DS_CHECK(size >= 10 && std::memcmp(p, kMagic, 6) == 0, path, ": not a .npy file (bad magic)");
  const int major = p[6], minor = p[7];
  DS_CHECK((major == 1 || major == 2 || major == 3) && minor == 0, path, ": unsupported npy format version ", major,
           ".", minor);
  size_t prefix = 10, hlen = size_t(p[8]) | size_t(p[9]) << 8;
  if (major >= 2) {
    DS_CHECK(size >= 12, path, ": truncated npy header");
    prefix = 12;
    hlen = size_t(p[8]) | size_t(p[9]) << 8 | size_t(p[10]) << 16 | size_t(p[11]) << 24;
  }
  DS_CHECK(hlen <= kMaxHeaderBytes, path, ": npy header length ", hlen, " exceeds the limit");
  DS_CHECK(hlen <= size - prefix, path, ": truncated npy header (", hlen, " bytes declared, file is ", size, ")");

  NpyArray a;
  a.source = path;
  HeaderParser(std::string_view(reinterpret_cast<const char*>(p + prefix), hlen), path).parse(&a.descr, &a.shape);
  const int isz = item_size(a.descr);
  DS_CHECK(isz != 0, path, ": unsupported npy dtype '", a.descr,
           "' (expected '<f4', '<f8', '<i8', '<i4', '|u1', '<u2')");
  const uint64_t n = checked_numel(a.shape, path);
  uint64_t bytes = 0;
  DS_CHECK(!__builtin_mul_overflow(n, uint64_t(isz), &bytes), path, ": array size overflows 64 bits");
  const uint64_t have = size - prefix - hlen;
  DS_CHECK(bytes == have, path, ": shape ", shape_tuple(a.shape), " of '", a.descr, "' needs ", bytes,
           " data bytes but the file has ", have);
  a.data.assign(p + prefix + hlen, p + size);
  return a;
}

void npy_write_f32(const std::string& path, const float* data, const std::vector<int64_t>& shape) {
  write_npy(path, "<f4", 4, data, shape);
}

void npy_write_i64(const std::string& path, const int64_t* data, const std::vector<int64_t>& shape) {
  write_npy(path, "<i8", 8, data, shape);
}

}  // namespace ds::io
