// SPDX-License-Identifier: MIT
// Streaming GGUF v3 writer (see gguf_writer.h).
#include "io/gguf_writer.h"

#include <cerrno>
#include <cstring>
#include <limits>

#include "base/error.h"
#include "io/json_util.h"

namespace ds::io {

namespace {

constexpr uint64_t kMaxKeyBytes = 65535;
constexpr size_t kMaxNameBytes = 63;
constexpr uint32_t kMaxDims = 4;

bool is_int_type(GgufType t) {
  return t == GgufType::U8 || t == GgufType::I8 || t == GgufType::U16 || t == GgufType::I16 || t == GgufType::U32 ||
         t == GgufType::I32 || t == GgufType::U64 || t == GgufType::I64;
}

// Whether `v` fits the integer type `t` (U64 values above 2^63-1 are carried in GgufValue::u, never here).
bool fits(GgufType t, int64_t v) {
  switch (t) {
    case GgufType::U8: return v >= 0 && v <= 0xff;
    case GgufType::I8: return v >= -128 && v <= 127;
    case GgufType::U16: return v >= 0 && v <= 0xffff;
    case GgufType::I16: return v >= -32768 && v <= 32767;
    case GgufType::U32: return v >= 0 && v <= int64_t(0xffffffffu);
    case GgufType::I32: return v >= std::numeric_limits<int32_t>::min() && v <= std::numeric_limits<int32_t>::max();
    case GgufType::U64: return v >= 0;
    case GgufType::I64: case GgufType::BOOL: return true;
    default: return false;
  }
}

// Little-endian bytes of scalars (this machine is little-endian, as GGUF files are).
struct Bytes {
  std::vector<uint8_t> b;
  template <class T>
  void raw(T v) {
    uint8_t tmp[sizeof(T)];
    std::memcpy(tmp, &v, sizeof(T));
    b.insert(b.end(), tmp, tmp + sizeof(T));
  }
  void str(const std::string& s) {
    raw<uint64_t>(s.size());
    b.insert(b.end(), s.begin(), s.end());
  }
  void integer(GgufType t, int64_t i, uint64_t u) {
    switch (t) {
      case GgufType::U8: case GgufType::BOOL: raw<uint8_t>(uint8_t(i)); break;
      case GgufType::I8: raw<int8_t>(int8_t(i)); break;
      case GgufType::U16: raw<uint16_t>(uint16_t(i)); break;
      case GgufType::I16: raw<int16_t>(int16_t(i)); break;
      case GgufType::U32: raw<uint32_t>(uint32_t(i)); break;
      case GgufType::I32: raw<int32_t>(int32_t(i)); break;
      case GgufType::U64: raw<uint64_t>(u); break;
      case GgufType::I64: raw<int64_t>(i); break;
      default: DS_ASSERT(false);
    }
  }
  void real(GgufType t, double f) {
    if (t == GgufType::F32) raw<float>(float(f));
    else raw<double>(f);
  }
};

void encode_value(Bytes& out, const GgufValue& v) {
  if (v.type == GgufType::STRING) {
    out.str(v.s);
  } else if (v.type == GgufType::ARRAY) {
    out.raw<uint32_t>(uint32_t(v.elem));
    out.raw<uint64_t>(v.size());
    if (v.elem == GgufType::STRING)
      for (const auto& s : v.strs) out.str(s);
    else if (v.elem == GgufType::F32 || v.elem == GgufType::F64)
      for (double f : v.floats) out.real(v.elem, f);
    else
      for (int64_t i : v.ints) out.integer(v.elem, i, uint64_t(i));
  } else if (v.type == GgufType::F32 || v.type == GgufType::F64) {
    out.real(v.type, v.f);
  } else {
    out.integer(v.type, v.i, v.u);
  }
}

uint64_t align_up(uint64_t n, uint64_t a) { return (n + a - 1) / a * a; }

}  // namespace

uint32_t ggml_type_of(DType t) {
  const std::string_view name = dtype_name(t);
  for (uint32_t id = 0; id < 64; ++id)
    if (const GgmlTypeInfo* ti = ggml_type_info(id); ti && name == ti->name) return id;
  fail("GGUF: ", name, " has no ggml type id");
}

GgufWriter::GgufWriter(std::string path, uint32_t alignment) : path_(std::move(path)), alignment_(alignment) {
  DS_CHECK(alignment_ >= 1 && alignment_ <= (1u << 30) && (alignment_ & (alignment_ - 1)) == 0, path_,
           ": GGUF alignment ", alignment_, " must be a power of two in [1, 2^30]");
  if (alignment_ != 32) set_u32("general.alignment", alignment_);
}

GgufWriter::~GgufWriter() {
  if (f_) std::fclose(f_);
}

void GgufWriter::check_key(const std::string& key) const {
  DS_CHECK(!header_done_, path_, ": metadata key '", show_text(key), "' set after the header was written");
  DS_CHECK(!key.empty() && key.size() <= kMaxKeyBytes, path_, ": metadata key '", show_text(key),
           "' must be 1 to 65535 bytes");
  for (char ch : key)
    DS_CHECK(ch >= 0x20 && ch < 0x7f, path_, ": metadata key '", show_text(key), "' has a byte outside printable ASCII");
}

void GgufWriter::set(const std::string& key, GgufValue v) {
  check_key(key);
  DS_CHECK(uint32_t(v.type) <= uint32_t(GgufType::F64), path_, ": metadata key '", key, "' has an unknown type");
  if (v.type == GgufType::ARRAY) {
    DS_CHECK(v.elem != GgufType::ARRAY && uint32_t(v.elem) <= uint32_t(GgufType::F64), path_, ": metadata key '",
             key, "': arrays of arrays are not supported");
    if (v.elem == GgufType::BOOL)
      for (int64_t x : v.ints) DS_CHECK(x == 0 || x == 1, path_, ": metadata key '", key, "': a bool must be 0 or 1");
    if (is_int_type(v.elem))
      for (int64_t x : v.ints)
        DS_CHECK(fits(v.elem, x), path_, ": metadata key '", key, "': ", x, " does not fit ", gguf_type_name(v.elem));
  } else if (is_int_type(v.type) && v.type != GgufType::U64) {
    DS_CHECK(fits(v.type, v.i), path_, ": metadata key '", key, "': ", v.i, " does not fit ", gguf_type_name(v.type));
  } else if (v.type == GgufType::BOOL) {
    DS_CHECK(v.i == 0 || v.i == 1, path_, ": metadata key '", key, "': a bool must be 0 or 1");
  }
  for (auto& kv : kv_)
    if (kv.first == key) {
      kv.second = std::move(v);
      return;
    }
  kv_.emplace_back(key, std::move(v));
}

namespace {
GgufValue scalar_int(GgufType t, int64_t i) {
  GgufValue v;
  v.type = t;
  v.i = i;
  v.u = uint64_t(i);
  return v;
}
}  // namespace

void GgufWriter::set_u8(const std::string& k, uint8_t v) { set(k, scalar_int(GgufType::U8, v)); }
void GgufWriter::set_i8(const std::string& k, int8_t v) { set(k, scalar_int(GgufType::I8, v)); }
void GgufWriter::set_u16(const std::string& k, uint16_t v) { set(k, scalar_int(GgufType::U16, v)); }
void GgufWriter::set_i16(const std::string& k, int16_t v) { set(k, scalar_int(GgufType::I16, v)); }
void GgufWriter::set_u32(const std::string& k, uint32_t v) { set(k, scalar_int(GgufType::U32, v)); }
void GgufWriter::set_i32(const std::string& k, int32_t v) { set(k, scalar_int(GgufType::I32, v)); }
void GgufWriter::set_i64(const std::string& k, int64_t v) { set(k, scalar_int(GgufType::I64, v)); }
void GgufWriter::set_bool(const std::string& k, bool v) { set(k, scalar_int(GgufType::BOOL, v ? 1 : 0)); }

void GgufWriter::set_u64(const std::string& k, uint64_t u) {
  GgufValue v;
  v.type = GgufType::U64;
  v.u = u;
  v.i = u > uint64_t(std::numeric_limits<int64_t>::max()) ? 0 : int64_t(u);
  set(k, std::move(v));
}

void GgufWriter::set_f32(const std::string& k, float f) {
  GgufValue v;
  v.type = GgufType::F32;
  v.f = f;
  set(k, std::move(v));
}

void GgufWriter::set_f64(const std::string& k, double f) {
  GgufValue v;
  v.type = GgufType::F64;
  v.f = f;
  set(k, std::move(v));
}

void GgufWriter::set_string(const std::string& k, const std::string& s) {
  GgufValue v;
  v.type = GgufType::STRING;
  v.s = s;
  set(k, std::move(v));
}

void GgufWriter::set_strings(const std::string& k, std::vector<std::string> s) {
  GgufValue v;
  v.type = GgufType::ARRAY;
  v.elem = GgufType::STRING;
  v.strs = std::move(s);
  set(k, std::move(v));
}

void GgufWriter::set_ints(const std::string& k, GgufType elem, std::vector<int64_t> x) {
  DS_CHECK(is_int_type(elem), path_, ": metadata key '", k, "': ", gguf_type_name(elem), " is not an integer type");
  GgufValue v;
  v.type = GgufType::ARRAY;
  v.elem = elem;
  v.ints = std::move(x);
  set(k, std::move(v));
}

void GgufWriter::set_floats(const std::string& k, GgufType elem, std::vector<double> x) {
  DS_CHECK(elem == GgufType::F32 || elem == GgufType::F64, path_, ": metadata key '", k, "': ", gguf_type_name(elem),
           " is not a float type");
  GgufValue v;
  v.type = GgufType::ARRAY;
  v.elem = elem;
  v.floats = std::move(x);
  set(k, std::move(v));
}

void GgufWriter::set_bools(const std::string& k, const std::vector<bool>& x) {
  GgufValue v;
  v.type = GgufType::ARRAY;
  v.elem = GgufType::BOOL;
  for (bool b : x) v.ints.push_back(b ? 1 : 0);
  set(k, std::move(v));
}

void GgufWriter::remove(const std::string& key) {
  DS_CHECK(!header_done_, path_, ": metadata key '", show_text(key), "' removed after the header was written");
  for (size_t i = 0; i < kv_.size(); ++i)
    if (kv_[i].first == key) {
      kv_.erase(kv_.begin() + long(i));
      return;
    }
}

const GgufValue* GgufWriter::find(const std::string& key) const {
  for (const auto& kv : kv_)
    if (kv.first == key) return &kv.second;
  return nullptr;
}

void GgufWriter::add_tensor(const std::string& name, std::vector<int64_t> ne, uint32_t type) {
  DS_CHECK(!header_done_, path_, ": tensor '", show_text(name), "' added after the header was written");
  const std::string where = path_ + ": tensor '" + show_text(name) + "'";
  DS_CHECK(!name.empty() && name.size() <= kMaxNameBytes, where, ": the name must be 1 to ", kMaxNameBytes, " bytes");
  DS_CHECK(is_valid_utf8(name), where, ": the name is not valid UTF-8");
  for (const Tensor& t : tensors_) DS_CHECK(t.name != name, where, ": the name appears twice");
  DS_CHECK(!ne.empty() && ne.size() <= kMaxDims, where, ": ", ne.size(), " dimensions (1 to 4 supported)");
  const GgmlTypeInfo* ti = ggml_type_info(type);
  DS_CHECK(ti, where, ": ggml type id ", type, " is unknown");
  uint64_t numel = 1;
  for (int64_t d : ne) {
    DS_CHECK(d >= 1, where, ": dimension ", d, " (each must be >= 1)");
    DS_CHECK(numel <= uint64_t(std::numeric_limits<int64_t>::max()) / uint64_t(d), where,
             ": the element count overflows");
    numel *= uint64_t(d);
  }
  DS_CHECK(ne[0] % ti->block == 0, where, ": ne[0] = ", ne[0], " is not a multiple of ", ti->name, "'s block of ",
           ti->block);
  const uint64_t nbytes = numel / uint64_t(ti->block) * uint64_t(ti->bytes);
  tensors_.push_back({name, std::move(ne), type, data_bytes_, nbytes});
  data_bytes_ += align_up(nbytes, alignment_);
}

uint64_t GgufWriter::header_bytes() const {
  uint64_t n = 4 + 4 + 8 + 8;
  for (const auto& [k, v] : kv_) {
    Bytes b;
    encode_value(b, v);
    n += 8 + k.size() + 4 + b.b.size();
  }
  for (const Tensor& t : tensors_) n += 8 + t.name.size() + 4 + 8 * t.ne.size() + 4 + 8;
  return align_up(n, alignment_);
}

uint64_t GgufWriter::file_bytes() const { return header_bytes() + data_bytes_; }

void GgufWriter::put(const void* p, size_t n) {
  if (n == 0) return;
  if (std::fwrite(p, 1, n, f_) != n)
    fail(path_, ": write failed (", std::strerror(errno), "; is the disk full?)");
}

void GgufWriter::pad(uint64_t n) {
  static const uint8_t zeros[64] = {};
  while (n > 0) {
    const size_t k = size_t(std::min<uint64_t>(n, sizeof zeros));
    put(zeros, k);
    n -= k;
  }
}

void GgufWriter::write_header() {
  DS_CHECK(!header_done_, path_, ": the header was already written");
  f_ = std::fopen(path_.c_str(), "wb");
  DS_CHECK(f_, path_, ": cannot create the file (", std::strerror(errno), ")");
  std::setvbuf(f_, nullptr, _IOFBF, size_t(4) << 20);
  Bytes h;
  h.b = {'G', 'G', 'U', 'F'};
  h.raw<uint32_t>(3);
  h.raw<uint64_t>(tensors_.size());
  h.raw<uint64_t>(kv_.size());
  for (const auto& [k, v] : kv_) {
    h.str(k);
    h.raw<uint32_t>(uint32_t(v.type));
    encode_value(h, v);
  }
  for (const Tensor& t : tensors_) {
    h.str(t.name);
    h.raw<uint32_t>(uint32_t(t.ne.size()));
    for (int64_t d : t.ne) h.raw<uint64_t>(uint64_t(d));
    h.raw<uint32_t>(t.type);
    h.raw<uint64_t>(t.offset);
  }
  put(h.b.data(), h.b.size());
  pad(align_up(h.b.size(), alignment_) - h.b.size());
  header_done_ = true;
  cur_ = 0;
  cur_done_ = 0;
}

void GgufWriter::write_data(const void* p, size_t n) {
  DS_CHECK(header_done_ && !finished_, path_, ": tensor data written ", header_done_ ? "after finish()" : "before the header");
  const auto* b = static_cast<const uint8_t*>(p);
  while (n > 0) {
    DS_CHECK(cur_ < tensors_.size(), path_, ": ", n, " bytes of tensor data past the last tensor");
    const Tensor& t = tensors_[cur_];
    const size_t k = size_t(std::min<uint64_t>(n, t.nbytes - cur_done_));
    put(b, k);
    b += k;
    n -= k;
    cur_done_ += k;
    if (cur_done_ == t.nbytes) {
      pad(align_up(t.nbytes, alignment_) - t.nbytes);
      ++cur_;
      cur_done_ = 0;
    }
  }
}

void GgufWriter::finish() {
  DS_CHECK(header_done_, path_, ": finish() before the header was written");
  DS_CHECK(!finished_, path_, ": finish() called twice");
  DS_CHECK(cur_ == tensors_.size(), path_, ": tensor '", cur_ < tensors_.size() ? tensors_[cur_].name : "",
           "' got ", cur_done_, " of its ", cur_ < tensors_.size() ? tensors_[cur_].nbytes : 0,
           " bytes; the file is incomplete");
  finished_ = true;
  const bool flushed = std::fflush(f_) == 0;
  const int err = errno;
  const bool closed = std::fclose(f_) == 0;
  f_ = nullptr;
  DS_CHECK(flushed && closed, path_, ": write failed when closing (", std::strerror(flushed ? errno : err), ")");
}

}  // namespace ds::io
