// SPDX-License-Identifier: MIT
// Safetensors header validation (see safetensors.h for the rule list and reliability.md S1-S8). Nothing outside
// [data, data + size) is read; every size is checked against the file before it is used.
#include "io/safetensors.h"

#include <algorithm>
#include <cstring>
#include <limits>
#include <sstream>

#include "base/error.h"
#include "io/json_util.h"

namespace ds::io {

namespace {

constexpr uint64_t kMaxHeaderBytes = 100'000'000;  // the reference's MAX_HEADER_SIZE

// A string for error messages: long names are cut so a hostile header cannot make a huge message.
std::string shown(const std::string& s) { return show_text(s); }

// A JSON value for error messages (never throws on odd strings, cut to a sane length).
std::string shown(const Json& v) { return shown(v.dump(-1, ' ', false, Json::error_handler_t::replace)); }

std::string shape_str(const std::vector<int64_t>& shape) {
  std::ostringstream os;
  os << '[';
  for (size_t i = 0; i < shape.size(); ++i) os << (i ? "," : "") << shape[i];
  os << ']';
  return os.str();
}

struct EntryParser {
  const std::string& label;
  const std::string& name;

  std::string where() const { return label + ": tensor '" + shown(name) + "'"; }

  // A non-negative JSON integer (nlohmann stores those as number_unsigned; floats, negatives and values past
  // 2^64 - 1, which nlohmann turns into floats, are rejected).
  uint64_t uint_field(const Json& v, const char* field, size_t i) const {
    DS_CHECK(v.is_number_unsigned(), where(), ": ", field, "[", i, "] must be a non-negative integer, found ",
             shown(v));
    return v.get<uint64_t>();
  }

  TensorInfo parse(const Json& e) const {
    DS_CHECK(e.is_object(), where(), ": entry must be an object with dtype, shape and data_offsets, found ",
             e.type_name());
    for (const auto& [k, v] : e.items()) {
      DS_CHECK(k == "dtype" || k == "shape" || k == "data_offsets", where(), ": unknown field '", shown(k),
               "' (expected only dtype, shape, data_offsets)");
    }
    for (const char* k : {"dtype", "shape", "data_offsets"})
      DS_CHECK(e.contains(k), where(), ": missing field '", k, "'");

    TensorInfo t;
    t.name = name;
    const Json& dt = e["dtype"];
    DS_CHECK(dt.is_string(), where(), ": dtype must be a string, found ", shown(dt));
    const std::string& dts = dt.get_ref<const std::string&>();
    DS_CHECK(parse_dtype(dts, &t.dtype), where(), ": unknown or unsupported dtype '", shown(dts), "'");

    const Json& sh = e["shape"];
    DS_CHECK(sh.is_array(), where(), ": shape must be an array of integers, found ", shown(sh));
    t.shape.reserve(sh.size());
    for (size_t i = 0; i < sh.size(); ++i) {
      const uint64_t d = uint_field(sh[i], "shape", i);
      DS_CHECK(d <= uint64_t(std::numeric_limits<int64_t>::max()), where(), ": shape[", i, "] = ", d,
               " is larger than 2^63-1");
      t.shape.push_back(int64_t(d));
    }

    const Json& off = e["data_offsets"];
    DS_CHECK(off.is_array() && off.size() == 2, where(), ": data_offsets must be [begin, end], found ", shown(off));
    t.begin = uint_field(off[0], "data_offsets", 0);
    t.end = uint_field(off[1], "data_offsets", 1);
    DS_CHECK(t.end >= t.begin, where(), ": data_offsets [", t.begin, ", ", t.end, "] end is before begin");

    // Element count, then bit count, each with overflow checks (reference: checked_mul, ValidationOverflow).
    uint64_t numel = 1;
    for (int64_t d : t.shape) {
      DS_CHECK(!__builtin_mul_overflow(numel, uint64_t(d), &numel), where(), ": element count of shape ",
               shape_str(t.shape), " overflows 64 bits");
    }
    uint64_t nbits = 0;
    DS_CHECK(!__builtin_mul_overflow(numel, uint64_t(dtype_size(t.dtype)) * 8u, &nbits), where(),
             ": size in bits of shape ", shape_str(t.shape), " of ", dts, " overflows 64 bits");
    DS_CHECK(nbits % 8 == 0, where(), ": shape ", shape_str(t.shape), " of ", dts, " is not a whole number of bytes");
    const uint64_t need = nbits / 8;
    DS_CHECK(t.end - t.begin == need, where(), ": data_offsets [", t.begin, ", ", t.end, "] span ", t.end - t.begin,
             " bytes but shape ", shape_str(t.shape), " of ", dts, " needs ", need);
    return t;
  }
};

}  // namespace

int64_t TensorInfo::numel() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;  // validated at parse time: fits (n * dtype bits < 2^64)
  return n;
}

std::unique_ptr<SafetensorsFile> SafetensorsFile::open(const std::string& path) {
  auto file = std::make_unique<MmapFile>(path);
  auto st = parse(file->data(), file->size(), path);
  st->file_ = std::move(file);
  return st;
}

std::unique_ptr<SafetensorsFile> SafetensorsFile::parse(const uint8_t* data, size_t size, const std::string& label) {
  auto st = std::make_unique<SafetensorsFile>();
  st->path_ = label;

  // S1: length prefix.
  DS_CHECK(size >= 8, label, ": file is ", size, " bytes, too small for the 8-byte header length");
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | data[i];
  DS_CHECK(n > 0, label, ": header length is 0");
  DS_CHECK(n <= kMaxHeaderBytes, label, ": header length ", n, " exceeds the ", kMaxHeaderBytes, "-byte limit");
  DS_CHECK(n <= size - 8, label, ": header length ", n, " runs past the end of the file (", size,
           " bytes; truncated?)");

  // S2: UTF-8 JSON object; leading whitespace and trailing whitespace padding are allowed.
  const std::string_view header(reinterpret_cast<const char*>(data + 8), size_t(n));
  DS_CHECK(!(header.size() >= 3 && header.compare(0, 3, "\xEF\xBB\xBF") == 0), label,
           ": header starts with a UTF-8 byte-order mark");
  const Json j = parse_json_text(header, label + ": header");
  DS_CHECK(j.is_object(), label, ": header must be a JSON object, found ", j.type_name());

  const uint8_t* buffer = data + 8 + n;
  const uint64_t buffer_size = uint64_t(size) - 8 - n;

  // S3/S5/S7/S8: entries (duplicates were rejected by the JSON parse).
  st->tensors_.reserve(j.size());
  for (const auto& [key, val] : j.items()) {
    if (key == "__metadata__") {
      DS_CHECK(val.is_object(), label, ": __metadata__ must be an object mapping strings to strings, found ",
               val.type_name());
      for (const auto& [mk, mv] : val.items()) {
        DS_CHECK(mv.is_string(), label, ": __metadata__ value for '", shown(mk), "' must be a string, found ",
                 mv.type_name());
        st->metadata_.emplace(mk, mv.get<std::string>());
      }
      continue;
    }
    st->tensors_.push_back(EntryParser{label, key}.parse(val));
  }

  // S4/S6: sorted by (begin, end), ranges must tile [0, buffer_size) exactly. Zero-size tensors may share an
  // offset with a neighbour. Ties are broken by name so the order is deterministic.
  auto& ts = st->tensors_;
  std::sort(ts.begin(), ts.end(), [](const TensorInfo& a, const TensorInfo& b) {
    if (a.begin != b.begin) return a.begin < b.begin;
    if (a.end != b.end) return a.end < b.end;
    return a.name < b.name;
  });
  uint64_t expected = 0;
  const TensorInfo* prev = nullptr;
  for (const TensorInfo& t : ts) {
    if (t.begin != expected) {
      const std::string who = label + ": tensor '" + shown(t.name) + "' data_offsets [" + std::to_string(t.begin) +
                              ", " + std::to_string(t.end) + "]";
      if (prev == nullptr) fail(who, ": the first tensor must start at byte 0");
      if (t.begin > expected)
        fail(who, ": gap of ", t.begin - expected, " bytes after tensor '", shown(prev->name), "' which ends at ",
             expected);
      fail(who, ": overlaps tensor '", shown(prev->name), "' [", prev->begin, ", ", prev->end, "]");
    }
    expected = t.end;
    prev = &t;
  }
  if (expected < buffer_size)
    fail(label, ": ", buffer_size - expected, " trailing bytes after the last tensor (tensors cover ", expected, " of ",
         buffer_size, " data bytes)");
  if (expected > buffer_size)
    fail(label, ": truncated: tensors need ", expected, " data bytes but the file has ", buffer_size);

  // Alignment: the kernels read tensors in place through typed pointers, so each tensor must start (in the file, and
  // so in the page-aligned mapping) at a multiple of its element size. The safetensors library always writes files
  // so (it pads the header to a multiple of 8 and the tensors are packed largest dtype first); a file that breaks
  // this was written by another tool. Rejected rather than copied: a silent copy would double the memory of a model.
  // Zero-size tensors are exempt: they cover no bytes and are never read (as they may share an offset, above).
  for (const TensorInfo& t : ts) {
    const uint64_t at = 8 + n + t.begin;
    const uint64_t elem = uint64_t(dtype_size(t.dtype));
    if (t.nbytes() > 0 && elem > 1 && at % elem != 0)
      fail(label, ": tensor '", shown(t.name), "' data starts at file offset ", at, " (8 + header length ", n,
           " + data_offsets begin ", t.begin, "), not a multiple of its ", dtype_name(t.dtype), " element size ",
           elem, ": misaligned data; files written by the safetensors library are always aligned (it pads the header "
           "to a multiple of 8), so re-save this file with it");
  }

  for (size_t i = 0; i < ts.size(); ++i) {
    ts[i].data = buffer + ts[i].begin;
    st->index_.emplace(ts[i].name, i);
  }
  return st;
}

const TensorInfo* SafetensorsFile::find(const std::string& name) const {
  auto it = index_.find(name);
  return it == index_.end() ? nullptr : &tensors_[it->second];
}

}  // namespace ds::io
