// SPDX-License-Identifier: MIT
// GGUF validation (see gguf.h for the rule list). A Cursor reads only inside [data, data + size) and every count is
// checked against the bytes left before anything is reserved for it.
#include "io/gguf.h"

#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <limits>

#include "base/error.h"
#include "io/json_util.h"

namespace ds::io {

namespace {

constexpr uint64_t kMaxKeyBytes = 65535;
constexpr uint64_t kMaxStringBytes = uint64_t(64) << 20;     // one metadata string
constexpr uint64_t kMaxMetadataBytes = uint64_t(256) << 20;  // all metadata values together
constexpr uint64_t kMaxAlignment = uint64_t(1) << 30;
constexpr uint64_t kMaxNameBytes = 63;                      // ggml's GGML_MAX_NAME (64) with its terminating NUL
constexpr uint32_t kMaxDims = 4;

// Sizes from ggml (ggml.h ggml_type, gguf-py constants.py GGML_QUANT_SIZES). Removed ids (4, 5, 31-33, 36-38) absent.
constexpr GgmlTypeInfo kTypes[] = {
    {0, "F32", 1, 4},         {1, "F16", 1, 2},          {2, "Q4_0", 32, 18},       {3, "Q4_1", 32, 20},
    {6, "Q5_0", 32, 22},      {7, "Q5_1", 32, 24},       {8, "Q8_0", 32, 34},       {9, "Q8_1", 32, 36},
    {10, "Q2_K", 256, 84},    {11, "Q3_K", 256, 110},    {12, "Q4_K", 256, 144},    {13, "Q5_K", 256, 176},
    {14, "Q6_K", 256, 210},   {15, "Q8_K", 256, 292},    {16, "IQ2_XXS", 256, 66},  {17, "IQ2_XS", 256, 74},
    {18, "IQ3_XXS", 256, 98}, {19, "IQ1_S", 256, 50},    {20, "IQ4_NL", 32, 18},    {21, "IQ3_S", 256, 110},
    {22, "IQ2_S", 256, 82},   {23, "IQ4_XS", 256, 136},  {24, "I8", 1, 1},          {25, "I16", 1, 2},
    {26, "I32", 1, 4},        {27, "I64", 1, 8},         {28, "F64", 1, 8},         {29, "IQ1_M", 256, 56},
    {30, "BF16", 1, 2},       {34, "TQ1_0", 256, 54},    {35, "TQ2_0", 256, 66},    {39, "MXFP4", 32, 17},
    {40, "NVFP4", 64, 36},    {41, "Q1_0", 128, 18},     {42, "Q2_0", 64, 18},
};

// Reads little-endian fields inside the buffer; every read names what it was reading when the file ends.
struct Cursor {
  const uint8_t* p;
  uint64_t size, pos = 0;
  const std::string& label;

  uint64_t left() const { return size - pos; }
  void need(uint64_t n, const std::string& what) const {
    DS_CHECK(n <= left(), label, ": the file ends inside ", what, " (at byte ", pos, ", ", n, " bytes needed, ", left(),
             " left)");
  }
  template <class T>
  T get(const std::string& what) {
    need(sizeof(T), what);
    T v;
    std::memcpy(&v, p + pos, sizeof(T));
    pos += sizeof(T);
    return v;
  }
  std::string str(const std::string& what, uint64_t max) {
    const uint64_t n = get<uint64_t>(what + " length");
    DS_CHECK(n <= max, label, ": ", what, " is ", n, " bytes long (at most ", max, ")");
    need(n, what);
    std::string s(reinterpret_cast<const char*>(p + pos), size_t(n));
    pos += n;
    return s;
  }
};

size_t elem_size(GgufType t) {
  switch (t) {
    case GgufType::U8: case GgufType::I8: case GgufType::BOOL: return 1;
    case GgufType::U16: case GgufType::I16: return 2;
    case GgufType::U32: case GgufType::I32: case GgufType::F32: return 4;
    case GgufType::U64: case GgufType::I64: case GgufType::F64: return 8;
    default: return 0;
  }
}

bool known(uint32_t t) { return t <= uint32_t(GgufType::F64); }

struct Reader {
  Cursor& c;
  const std::string& label;
  uint64_t meta_bytes = 0;

  void charge(uint64_t n, const std::string& key) {
    meta_bytes += n;
    DS_CHECK(meta_bytes <= kMaxMetadataBytes, label, ": metadata exceeds ", kMaxMetadataBytes >> 20,
             " MiB at key '", show_text(key), "'");
  }

  // One scalar of type t into v (integers by signedness, bools checked).
  void scalar(GgufType t, const std::string& key, GgufValue& v, int64_t* as_int, double* as_float) {
    const std::string what = "the value of '" + show_text(key) + "'";
    int64_t i = 0;
    double f = 0;
    bool is_float = false;
    switch (t) {
      case GgufType::U8: i = c.get<uint8_t>(what); break;
      case GgufType::I8: i = c.get<int8_t>(what); break;
      case GgufType::U16: i = c.get<uint16_t>(what); break;
      case GgufType::I16: i = c.get<int16_t>(what); break;
      case GgufType::U32: i = c.get<uint32_t>(what); break;
      case GgufType::I32: i = c.get<int32_t>(what); break;
      case GgufType::I64: i = c.get<int64_t>(what); break;
      case GgufType::U64: {
        const uint64_t u = c.get<uint64_t>(what);
        if (as_int == nullptr) {
          v.u = u;
          v.i = u > uint64_t(std::numeric_limits<int64_t>::max()) ? 0 : int64_t(u);
          return;
        }
        DS_CHECK(u <= uint64_t(std::numeric_limits<int64_t>::max()), label, ": ", what, " holds ", u,
                 ", above 2^63-1");
        i = int64_t(u);
        break;
      }
      case GgufType::BOOL: {
        const uint8_t b = c.get<uint8_t>(what);
        DS_CHECK(b <= 1, label, ": ", what, " is a bool holding ", int(b), " (must be 0 or 1)");
        i = b;
        break;
      }
      case GgufType::F32: f = c.get<float>(what), is_float = true; break;
      case GgufType::F64: f = c.get<double>(what), is_float = true; break;
      default: DS_ASSERT(false);
    }
    if (as_int || as_float) {
      if (is_float) *as_float = f;
      else *as_int = i;
      return;
    }
    if (is_float) v.f = f;
    else v.i = i, v.u = uint64_t(i);
  }

  GgufValue value(uint32_t type_id, const std::string& key) {
    DS_CHECK(known(type_id), label, ": key '", show_text(key), "' has unknown value type ", type_id);
    GgufValue v;
    v.type = GgufType(type_id);
    if (v.type == GgufType::STRING) {
      v.s = c.str("the string value of '" + show_text(key) + "'", kMaxStringBytes);
      charge(v.s.size(), key);
    } else if (v.type == GgufType::ARRAY) {
      const uint32_t et = c.get<uint32_t>("the element type of array '" + show_text(key) + "'");
      DS_CHECK(known(et), label, ": array '", show_text(key), "' has unknown element type ", et);
      DS_CHECK(GgufType(et) != GgufType::ARRAY, label, ": array '", show_text(key),
               "' holds arrays (nested arrays are not supported)");
      v.elem = GgufType(et);
      const uint64_t n = c.get<uint64_t>("the length of array '" + show_text(key) + "'");
      // Every element takes at least its size (strings: an 8-byte length): the count is bounded by the bytes left.
      const uint64_t min_elem = v.elem == GgufType::STRING ? 8 : elem_size(v.elem);
      DS_CHECK(n <= c.left() / min_elem, label, ": array '", show_text(key), "' claims ", n, " elements of ",
               gguf_type_name(v.elem), " but only ", c.left(), " bytes are left in the file");
      charge(n * min_elem, key);
      if (v.elem == GgufType::STRING) {
        v.strs.reserve(size_t(n));
        for (uint64_t k = 0; k < n; ++k) {
          v.strs.push_back(c.str("element " + std::to_string(k) + " of '" + show_text(key) + "'", kMaxStringBytes));
          charge(v.strs.back().size(), key);
        }
      } else if (v.elem == GgufType::F32 || v.elem == GgufType::F64) {
        v.floats.resize(size_t(n));
        for (uint64_t k = 0; k < n; ++k) scalar(v.elem, key, v, nullptr, &v.floats[size_t(k)]);
      } else {
        v.ints.resize(size_t(n));
        for (uint64_t k = 0; k < n; ++k) scalar(v.elem, key, v, &v.ints[size_t(k)], nullptr);
      }
    } else {
      scalar(v.type, key, v, nullptr, nullptr);
    }
    return v;
  }
};

std::string shape_str(const std::vector<int64_t>& ne) {
  std::string s = "[";
  for (size_t i = 0; i < ne.size(); ++i) s += (i ? ", " : "") + std::to_string(ne[i]);
  return s + "]";
}

}  // namespace

const char* gguf_type_name(GgufType t) {
  static const char* names[] = {"u8", "i8", "u16", "i16", "u32", "i32", "f32", "bool", "string", "array", "u64",
                                "i64", "f64"};
  return known(uint32_t(t)) ? names[uint32_t(t)] : "unknown";
}

bool GgufValue::is_int() const {
  return type != GgufType::F32 && type != GgufType::F64 && type != GgufType::STRING && type != GgufType::ARRAY &&
         type != GgufType::BOOL;
}

size_t GgufValue::size() const {
  if (type != GgufType::ARRAY) return 0;
  return elem == GgufType::STRING ? strs.size() : (elem == GgufType::F32 || elem == GgufType::F64) ? floats.size()
                                                                                                    : ints.size();
}

const GgmlTypeInfo* ggml_type_info(uint32_t id) {
  for (const GgmlTypeInfo& t : kTypes)
    if (t.id == id) return &t;
  return nullptr;
}

int64_t GgufTensor::numel() const {
  int64_t n = 1;
  for (int64_t d : ne) n *= d;
  return n;
}

std::unique_ptr<GgufFile> GgufFile::open(const std::string& path) {
  std::unique_ptr<GgufFile> f(new GgufFile());
  f->path_ = path;
  f->file_ = std::make_unique<MmapFile>(path);
  f->parse_all(f->file_->data(), f->file_->size());
  return f;
}

std::unique_ptr<GgufFile> GgufFile::parse(const uint8_t* data, size_t size, const std::string& label) {
  std::unique_ptr<GgufFile> f(new GgufFile());
  f->path_ = label;
  f->parse_all(data, size);
  return f;
}

void GgufFile::parse_all(const uint8_t* data, size_t size) {
  const std::string& label = path_;
  Cursor c{data, size, 0, label};
  DS_CHECK(size >= 4 && std::memcmp(data, "GGUF", 4) == 0, label, ": not a GGUF file (no 'GGUF' magic at the start)");
  c.pos = 4;
  version_ = c.get<uint32_t>("the version");
  DS_CHECK(version_ != 0x03000000u && version_ != 0x02000000u, label,
           ": a big-endian GGUF file (version field byte-swapped); only little-endian files are supported");
  DS_CHECK(version_ == 2 || version_ == 3, label, ": GGUF version ", version_, " is not supported (2 or 3)");
  const uint64_t n_tensors = c.get<uint64_t>("the tensor count");
  const uint64_t n_kv = c.get<uint64_t>("the metadata count");
  // A key/value pair takes at least 8 (key length) + 1 + 4 (type) + 1 bytes; a tensor info at least 8 + 1 + 4 + 8 +
  // 4 + 8 bytes. Counts beyond what the file could hold are rejected before anything is allocated.
  DS_CHECK(n_kv <= c.left() / 14, label, ": the header claims ", n_kv, " metadata entries but the file has ", c.left(),
           " bytes left");
  DS_CHECK(n_tensors <= c.left() / 33, label, ": the header claims ", n_tensors, " tensors but the file has ",
           c.left(), " bytes left");

  Reader rd{c, label};
  for (uint64_t k = 0; k < n_kv; ++k) {
    std::string key = c.str("metadata key " + std::to_string(k), kMaxKeyBytes);
    DS_CHECK(!key.empty(), label, ": metadata key ", k, " is empty");
    for (char ch : key)
      DS_CHECK(ch >= 0x20 && ch < 0x7f, label, ": metadata key ", k, " ('", show_text(key),
               "') has a byte outside printable ASCII");
    DS_CHECK(kv_.find(key) == kv_.end(), label, ": metadata key '", key, "' appears twice");
    const uint32_t type = c.get<uint32_t>("the type of '" + key + "'");
    kv_[key] = rd.value(type, key);
  }

  // Well-known keys with the types the spec gives them.
  if (const GgufValue* a = find("general.alignment")) {
    DS_CHECK(a->type == GgufType::U32, label, ": general.alignment must be a u32, found ", gguf_type_name(a->type));
    DS_CHECK(a->u >= 1 && a->u <= kMaxAlignment && (a->u & (a->u - 1)) == 0, label, ": general.alignment = ", a->u,
             " must be a power of two in [1, 2^30]");
    alignment_ = uint32_t(a->u);
  }
  for (const char* k : {"split.no", "split.count", "split.tensors.count"})
    if (const GgufValue* v = find(k))
      DS_CHECK(v->is_int() && v->i >= 0 && v->i <= std::numeric_limits<int32_t>::max(), label, ": ", k,
               " must be a non-negative integer, found ", gguf_type_name(v->type));

  tensors_.reserve(size_t(n_tensors));
  uint64_t expect = 0;  // where the next tensor must start in the data section
  for (uint64_t k = 0; k < n_tensors; ++k) {
    GgufTensor t;
    t.name = c.str("the name of tensor " + std::to_string(k), uint64_t(1) << 20);
    const std::string where = label + ": tensor " + std::to_string(k) + " '" + show_text(t.name) + "'";
    DS_CHECK(!t.name.empty(), label, ": tensor ", k, " has an empty name");
    DS_CHECK(t.name.size() <= kMaxNameBytes, where, ": the name is ", t.name.size(), " bytes (at most ", kMaxNameBytes,
             ")");
    DS_CHECK(is_valid_utf8(t.name), where, ": the name is not valid UTF-8");
    DS_CHECK(index_.find(t.name) == index_.end(), where, ": the name appears twice");
    const uint32_t nd = c.get<uint32_t>("the dimension count of " + where);
    DS_CHECK(nd >= 1 && nd <= kMaxDims, where, ": ", nd, " dimensions (1 to ", kMaxDims, " supported)");
    uint64_t numel = 1;
    for (uint32_t d = 0; d < nd; ++d) {
      const uint64_t v = c.get<uint64_t>("ne[" + std::to_string(d) + "] of " + where);
      DS_CHECK(v >= 1 && v <= uint64_t(std::numeric_limits<int64_t>::max()), where, ": ne[", d, "] = ", v,
               " (each dimension must be in [1, 2^63-1])");
      DS_CHECK(numel <= uint64_t(std::numeric_limits<int64_t>::max()) / v, where,
               ": the element count overflows 2^63-1");
      numel *= v;
      t.ne.push_back(int64_t(v));
    }
    t.type = c.get<uint32_t>("the type of " + where);
    const GgmlTypeInfo* ti = ggml_type_info(t.type);
    DS_CHECK(ti, where, ": ggml type id ", t.type, " is unknown or was removed from ggml");
    DS_CHECK(t.ne[0] % ti->block == 0, where, ": ne[0] = ", t.ne[0], " is not a multiple of ", ti->name,
             "'s block of ", ti->block);
    const uint64_t blocks = numel / uint64_t(ti->block);
    DS_CHECK(blocks <= std::numeric_limits<uint64_t>::max() / uint64_t(ti->bytes), where,
             ": the byte size overflows");
    t.nbytes = blocks * uint64_t(ti->bytes);
    t.offset = c.get<uint64_t>("the offset of " + where);
    DS_CHECK(t.offset % alignment_ == 0, where, ": offset ", t.offset, " is not a multiple of the alignment ",
             alignment_);
    DS_CHECK(t.offset == expect, where, ": offset ", t.offset, " where ", expect,
             " was expected (tensors must follow each other in order, each padded to the alignment)");
    DS_CHECK(t.nbytes <= std::numeric_limits<uint64_t>::max() - t.offset - alignment_, where,
             ": offset + size overflows");
    expect = (t.offset + t.nbytes + alignment_ - 1) / alignment_ * alignment_;
    index_[t.name] = tensors_.size();
    tensors_.push_back(std::move(t));
  }
  // The data section starts at the next multiple of the alignment after the header.
  // A file without tensors (a vocabulary-only file: convert_hf_to_gguf.py --vocab-only) may end right after its
  // metadata, without the padding to the data section (gguf-py writes it so, and ggml reads it).
  data_offset_ = (c.pos + alignment_ - 1) / alignment_ * alignment_;
  if (tensors_.empty()) return;
  DS_CHECK(data_offset_ <= size, label, ": the file ends before its data section (header ", c.pos, " bytes, file ",
           size, ")");
  const uint64_t avail = size - data_offset_;
  for (GgufTensor& t : tensors_) {
    DS_CHECK(t.offset <= avail && t.nbytes <= avail - t.offset, label, ": tensor '", show_text(t.name), "' ",
             shape_str(t.ne), " ", ggml_type_info(t.type)->name, " needs bytes [", t.offset, ", ",
             t.offset + t.nbytes, ") of the data section, which has ", avail);
    t.data = data + data_offset_ + t.offset;
  }
}

const GgufValue* GgufFile::find(const std::string& key) const {
  auto it = kv_.find(key);
  return it == kv_.end() ? nullptr : &it->second;
}

const GgufTensor* GgufFile::tensor(const std::string& name) const {
  auto it = index_.find(name);
  return it == index_.end() ? nullptr : &tensors_[it->second];
}

std::vector<std::string> gguf_split_paths(const std::string& path) {
  // name-00001-of-00003.gguf
  const std::string suffix = ".gguf";
  if (path.size() < 20 || path.compare(path.size() - suffix.size(), suffix.size(), suffix) != 0) return {path};
  const size_t end = path.size() - suffix.size();  // "...-00001-of-00003" ends here
  if (end < 15 || path[end - 15] != '-' || path.compare(end - 9, 4, "-of-") != 0) return {path};
  const std::string no = path.substr(end - 14, 5), count = path.substr(end - 5, 5);
  for (char ch : no + count)
    if (ch < '0' || ch > '9') return {path};
  const int n = std::stoi(count);
  DS_CHECK(std::stoi(no) == 1, path, ": this is part ", std::stoi(no), " of a split model; give the first part (-00001-of-",
           count, ".gguf)");
  DS_CHECK(n >= 1, path, ": a split count of 0");
  std::vector<std::string> parts;
  for (int i = 1; i <= n; ++i) {
    char buf[16];
    std::snprintf(buf, sizeof buf, "%05d", i);
    parts.push_back(path.substr(0, end - 14) + buf + path.substr(end - 9));
  }
  return parts;
}

std::unique_ptr<GgufModel> GgufModel::open(const std::string& path) {
  std::unique_ptr<GgufModel> m(new GgufModel());
  const std::vector<std::string> paths = gguf_split_paths(path);
  for (size_t i = 0; i < paths.size(); ++i) {
    DS_CHECK(std::filesystem::exists(paths[i]), paths[i], ": part ", i + 1, " of ", paths.size(),
             " of the split model ", path, " does not exist");
    m->parts_.push_back(GgufFile::open(paths[i]));
    const GgufFile& f = *m->parts_.back();
    if (paths.size() > 1) {
      const GgufValue* no = f.find("split.no");
      const GgufValue* count = f.find("split.count");
      DS_CHECK(no && count, paths[i], ": a part of a split model without split.no / split.count");
      DS_CHECK(no->i == int64_t(i) && count->i == int64_t(paths.size()), paths[i], ": split.no = ", no->i,
               ", split.count = ", count->i, " where ", i, " and ", paths.size(), " were expected");
    }
    for (const GgufTensor& t : f.tensors()) {
      DS_CHECK(m->index_.find(t.name) == m->index_.end(), paths[i], ": tensor '", show_text(t.name),
               "' also appears in an earlier part");
      GgufTensor* tt = const_cast<GgufTensor*>(&t);
      tt->file = int(i);
      m->index_[t.name] = &t;
      m->tensors_.push_back(&t);
    }
  }
  if (const GgufValue* tc = m->first().find("split.tensors.count"))
    DS_CHECK(tc->i == int64_t(m->tensors_.size()), path, ": split.tensors.count = ", tc->i, " but the parts hold ",
             m->tensors_.size(), " tensors");
  return m;
}

const GgufTensor* GgufModel::tensor(const std::string& name) const {
  auto it = index_.find(name);
  return it == index_.end() ? nullptr : it->second;
}

int64_t GgufModel::get_int(const std::string& key) const {
  const GgufValue* v = find(key);
  DS_CHECK(v, first().path(), ": metadata key '", key, "' is missing");
  DS_CHECK(v->is_int(), first().path(), ": metadata key '", key, "' must be an integer, found ",
           gguf_type_name(v->type));
  DS_CHECK(v->type != GgufType::U64 || v->u <= uint64_t(std::numeric_limits<int64_t>::max()), first().path(),
           ": metadata key '", key, "' = ", v->u, " is above 2^63-1");
  return v->i;
}

int64_t GgufModel::get_int_or(const std::string& key, int64_t def) const { return find(key) ? get_int(key) : def; }

double GgufModel::get_float(const std::string& key) const {
  const GgufValue* v = find(key);
  DS_CHECK(v, first().path(), ": metadata key '", key, "' is missing");
  if (v->is_int()) return double(v->i);
  DS_CHECK(v->type == GgufType::F32 || v->type == GgufType::F64, first().path(), ": metadata key '", key,
           "' must be a number, found ", gguf_type_name(v->type));
  return v->f;
}

double GgufModel::get_float_or(const std::string& key, double def) const { return find(key) ? get_float(key) : def; }

std::string GgufModel::get_string(const std::string& key) const {
  const GgufValue* v = find(key);
  DS_CHECK(v, first().path(), ": metadata key '", key, "' is missing");
  DS_CHECK(v->type == GgufType::STRING, first().path(), ": metadata key '", key, "' must be a string, found ",
           gguf_type_name(v->type));
  return v->s;
}

}  // namespace ds::io
