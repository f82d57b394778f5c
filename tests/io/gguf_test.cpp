// SPDX-License-Identifier: MIT
// GGUF reader (io/gguf.h): a valid image built here parses to what was written; every prefix of it is rejected
// (G1); a corpus of malformed images, one per rule of reliability.md G2-G13, each gives a clear error naming the
// problem (these run under ASan too); the real GGUF files of ../shared/fixtures/gguf (written by the converters and
// llama.cpp's llama-quantize) parse to exactly what ggml's own Python reader lists (tests/fixtures/gguf/listing.json,
// made by tools/gguf_goldens/listing.py); split sets open from their first part.
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>

#include <nlohmann/json.hpp>

#include "base/error.h"
#include "io/gguf.h"
#include "io/io_test_util.h"

namespace ds::io::test {
namespace {

// Builds GGUF images field by field; tests change one field to make one defect.
struct Kv {
  std::string key;
  uint32_t type;
  std::vector<uint8_t> payload;  // the value's bytes after the type
};
struct Ti {
  std::string name;
  std::vector<uint64_t> ne;
  uint32_t type = 0;
  int64_t offset = -1;  // -1: the running padded offset
  uint64_t bytes = 0;   // data bytes written for it
};

template <class T>
void put(std::vector<uint8_t>& b, T v) {
  const auto* p = reinterpret_cast<const uint8_t*>(&v);
  b.insert(b.end(), p, p + sizeof(T));
}
void put_str(std::vector<uint8_t>& b, const std::string& s) {
  put<uint64_t>(b, s.size());
  b.insert(b.end(), s.begin(), s.end());
}
std::vector<uint8_t> str_val(const std::string& s) {
  std::vector<uint8_t> b;
  put_str(b, s);
  return b;
}
template <class T>
std::vector<uint8_t> val(T v) {
  std::vector<uint8_t> b;
  put<T>(b, v);
  return b;
}
std::vector<uint8_t> str_array(const std::vector<std::string>& v) {
  std::vector<uint8_t> b;
  put<uint32_t>(b, 8);
  put<uint64_t>(b, v.size());
  for (const auto& s : v) put_str(b, s);
  return b;
}
std::vector<uint8_t> f32_array(const std::vector<float>& v) {
  std::vector<uint8_t> b;
  put<uint32_t>(b, 6);
  put<uint64_t>(b, v.size());
  for (float f : v) put<float>(b, f);
  return b;
}

struct Image {
  uint32_t version = 3;
  std::vector<Kv> kv = {{"general.architecture", 8, str_val("deepseek2")},
                        {"general.alignment", 4, val<uint32_t>(32)},
                        {"tokenizer.ggml.tokens", 9, str_array({"a", "b", "<0x0A>"})},
                        {"tokenizer.ggml.scores", 9, f32_array({0.f, -1.f, -2.f})},
                        {"deepseek2.block_count", 4, val<uint32_t>(2)},
                        {"deepseek2.rope.freq_base", 6, val<float>(10000.f)},
                        {"tokenizer.ggml.add_bos_token", 7, val<uint8_t>(1)}};
  std::vector<Ti> tensors = {{"token_embd.weight", {4, 3}, 0, -1, 48}, {"blk.0.attn_q.weight", {32, 2}, 8, -1, 68}};
  int64_t n_tensors = -1, n_kv = -1;  // -1: the real counts
  uint32_t align = 32;

  std::vector<uint8_t> bytes() const {
    std::vector<uint8_t> b = {'G', 'G', 'U', 'F'};
    put<uint32_t>(b, version);
    put<uint64_t>(b, n_tensors >= 0 ? uint64_t(n_tensors) : tensors.size());
    put<uint64_t>(b, n_kv >= 0 ? uint64_t(n_kv) : kv.size());
    for (const Kv& k : kv) {
      put_str(b, k.key);
      put<uint32_t>(b, k.type);
      b.insert(b.end(), k.payload.begin(), k.payload.end());
    }
    uint64_t off = 0;
    for (const Ti& t : tensors) {
      put_str(b, t.name);
      put<uint32_t>(b, uint32_t(t.ne.size()));
      for (uint64_t d : t.ne) put<uint64_t>(b, d);
      put<uint32_t>(b, t.type);
      put<uint64_t>(b, t.offset >= 0 ? uint64_t(t.offset) : off);
      off = (off + t.bytes + align - 1) / align * align;
    }
    while (b.size() % align) b.push_back(0);
    for (const Ti& t : tensors) {
      for (uint64_t i = 0; i < t.bytes; ++i) b.push_back(uint8_t(i * 13 + 5));
      while (b.size() % align) b.push_back(0);
    }
    return b;
  }
};

std::string parse_error(const std::vector<uint8_t>& img) {
  try {
    GgufFile::parse(img.data(), img.size(), "t.gguf");
  } catch (const ds::Error& e) {
    return e.what();
  }
  return "";
}

TEST(Gguf, ValidImageParses) {
  const Image im;
  const auto img = im.bytes();
  auto f = GgufFile::parse(img.data(), img.size(), "t.gguf");
  EXPECT_EQ(f->version(), 3u);
  EXPECT_EQ(f->alignment(), 32u);
  ASSERT_NE(f->find("general.architecture"), nullptr);
  EXPECT_EQ(f->find("general.architecture")->s, "deepseek2");
  EXPECT_EQ(f->find("tokenizer.ggml.tokens")->strs, (std::vector<std::string>{"a", "b", "<0x0A>"}));
  EXPECT_EQ(f->find("tokenizer.ggml.scores")->floats, (std::vector<double>{0, -1, -2}));
  EXPECT_EQ(f->find("deepseek2.block_count")->i, 2);
  EXPECT_EQ(f->find("tokenizer.ggml.add_bos_token")->i, 1);
  ASSERT_EQ(f->tensors().size(), 2u);
  const GgufTensor* q = f->tensor("blk.0.attn_q.weight");
  ASSERT_NE(q, nullptr);
  EXPECT_EQ(q->type, 8u);
  EXPECT_EQ(q->ne, (std::vector<int64_t>{32, 2}));
  EXPECT_EQ(q->nbytes, 68u);  // 2 Q8_0 blocks of 34 bytes
  EXPECT_EQ(q->offset, 64u);  // 48 bytes of F32, padded to 32
  EXPECT_EQ(q->data, img.data() + f->data_offset() + 64);
  EXPECT_EQ(q->data[1], uint8_t(13 + 5));
}

// G1: every prefix of a valid file that cuts into a field or a tensor's bytes is rejected with a message, never a
// crash or an out-of-bounds read; cutting only the padding after the last tensor leaves a valid file.
TEST(Gguf, EveryTruncationIsAnError) {
  const auto img = Image().bytes();
  auto f = GgufFile::parse(img.data(), img.size(), "t.gguf");
  const GgufTensor& last = f->tensors().back();
  const size_t end = size_t(f->data_offset() + last.offset + last.nbytes);
  ASSERT_LT(end, img.size());
  for (size_t n = 0; n < img.size(); ++n) {
    const std::vector<uint8_t> cut(img.begin(), img.begin() + long(n));
    const std::string e = parse_error(cut);
    if (n < end) EXPECT_FALSE(e.empty()) << "prefix of " << n << " bytes accepted";
    else EXPECT_EQ(e, "") << "prefix of " << n << " bytes (only padding cut)";
  }
}

// A vocabulary-only file (no tensors; gguf-py's write_vocab, convert_hf_to_gguf.py --vocab-only) ends right after its
// metadata without padding to the data section; it parses, and every shorter prefix is still an error.
TEST(Gguf, TensorlessFileNeedsNoPadding) {
  Image im;
  im.tensors.clear();
  auto img = im.bytes();
  size_t end = 0;
  {
    auto padded = GgufFile::parse(img.data(), img.size(), "t.gguf");
    EXPECT_TRUE(padded->tensors().empty());
  }
  // Strip the padding: the metadata's end is where the last value ends.
  Image probe = im;
  probe.align = 1;
  end = probe.bytes().size();
  ASSERT_LT(end, img.size());
  img.resize(end);
  auto f = GgufFile::parse(img.data(), img.size(), "t.gguf");
  EXPECT_TRUE(f->tensors().empty());
  EXPECT_EQ(f->find("tokenizer.ggml.tokens")->strs.size(), 3u);
  for (size_t n = 0; n < end; ++n) {
    const std::vector<uint8_t> cut(img.begin(), img.begin() + long(n));
    EXPECT_FALSE(parse_error(cut).empty()) << "prefix of " << n << " bytes accepted";
  }
}

struct Case {
  const char* what;
  std::function<void(Image&)> make;  // changes a valid image
  std::vector<std::string> expect;   // pieces of the message
  std::function<void(std::vector<uint8_t>&)> patch = nullptr;  // or patches its bytes
};

std::vector<Case> corpus() {
  auto kv_set = [](const std::string& key, uint32_t type, std::vector<uint8_t> payload) {
    return [=](Image& im) {
      for (Kv& k : im.kv)
        if (k.key == key) {
          k.type = type;
          k.payload = payload;
          return;
        }
      im.kv.push_back({key, type, payload});
    };
  };
  auto arr = [](uint32_t et, uint64_t n, std::vector<uint8_t> tail = {}) {
    std::vector<uint8_t> b;
    put<uint32_t>(b, et);
    put<uint64_t>(b, n);
    b.insert(b.end(), tail.begin(), tail.end());
    return b;
  };
  auto t1 = [](std::function<void(Ti&)> f) { return [=](Image& im) { f(im.tensors[1]); }; };
  return {
      // G2
      {"bad magic", nullptr, {"not a GGUF file"}, [](std::vector<uint8_t>& b) { b[0] = 'X'; }},
      {"version 0", [](Image& im) { im.version = 0; }, {"version 0", "not supported"}},
      {"version 1", [](Image& im) { im.version = 1; }, {"version 1", "not supported"}},
      {"version 4", [](Image& im) { im.version = 4; }, {"version 4"}},
      {"byte-swapped version", [](Image& im) { im.version = 0x03000000; }, {"big-endian"}},
      // G3
      {"n_kv 2^63-1", [](Image& im) { im.n_kv = int64_t((~uint64_t(0)) >> 1); }, {"metadata entries"}},
      {"n_kv 2^64-1", nullptr, {"metadata entries"},
       [](std::vector<uint8_t>& b) { std::memset(b.data() + 16, 0xff, 8); }},
      {"n_tensors 2^64-1", nullptr, {"tensors but the file"},
       [](std::vector<uint8_t>& b) { std::memset(b.data() + 8, 0xff, 8); }},
      {"n_tensors larger than the tensor infos", [](Image& im) { im.n_tensors = 3; }, {"tensor 2"}},
      // G4
      {"empty key", kv_set("", 4, val<uint32_t>(1)), {"is empty"}},
      {"key over 65535 bytes", kv_set(std::string(70000, 'k'), 4, val<uint32_t>(1)), {"65535"}},
      {"key with a NUL", kv_set(std::string("a\0b", 3), 4, val<uint32_t>(1)), {"printable ASCII"}},
      {"non-ASCII key", kv_set("ключ", 4, val<uint32_t>(1)), {"printable ASCII"}},
      {"key length past the end", nullptr, {"metadata key 0", "at most 65535"},
       [](std::vector<uint8_t>& b) { const uint64_t n = uint64_t(1) << 40; std::memcpy(b.data() + 24, &n, 8); }},
      // G5
      {"duplicate key", [](Image& im) { im.kv.push_back(im.kv[0]); }, {"'general.architecture' appears twice"}},
      {"value type 13", kv_set("x.y", 13, {}), {"unknown value type 13"}},
      {"value type -1", kv_set("x.y", 0xffffffffu, {}), {"unknown value type 4294967295"}},
      {"array of arrays", kv_set("x.y", 9, arr(9, 1)), {"nested arrays"}},
      {"array element type 13", kv_set("x.y", 9, arr(13, 1)), {"unknown element type 13"}},
      {"array count beyond the file", kv_set("x.y", 9, arr(6, uint64_t(1) << 40)), {"claims", "elements"}},
      {"string array count beyond the file", kv_set("x.y", 9, arr(8, uint64_t(1) << 60)), {"claims", "elements"}},
      {"string length beyond the file", kv_set("x.y", 8, val<uint64_t>(1000000)), {"ends inside"}},
      // G6
      {"bool 2", kv_set("x.flag", 7, val<uint8_t>(2)), {"bool holding 2"}},
      {"alignment as i32", kv_set("general.alignment", 5, val<int32_t>(32)), {"general.alignment must be a u32"}},
      {"alignment as a string", kv_set("general.alignment", 8, str_val("32")), {"general.alignment must be a u32"}},
      {"split.count as a string", kv_set("split.count", 8, str_val("2")), {"split.count"}},
      // G7
      {"alignment 0", kv_set("general.alignment", 4, val<uint32_t>(0)), {"power of two"}},
      {"alignment 13", kv_set("general.alignment", 4, val<uint32_t>(13)), {"power of two"}},
      {"alignment 2^31", kv_set("general.alignment", 4, val<uint32_t>(1u << 31)), {"power of two"}},
      // G8
      {"string over 64 MiB", kv_set("x.y", 8, val<uint64_t>(uint64_t(65) << 20)), {"at most"}},
      {"u64 array element past 2^63-1", kv_set("x.y", 9, [&] {
         auto b = arr(10, 1);
         put<uint64_t>(b, ~uint64_t(0));
         return b;
       }()), {"above 2^63-1"}},
      // G9
      {"empty tensor name", t1([](Ti& t) { t.name = ""; }), {"empty name"}},
      {"tensor name of 64 bytes", t1([](Ti& t) { t.name = std::string(64, 'n'); }), {"64 bytes", "at most 63"}},
      {"duplicate tensor name", t1([](Ti& t) { t.name = "token_embd.weight"; }), {"appears twice"}},
      {"tensor name not UTF-8", t1([](Ti& t) { t.name = "a\xff"; }), {"not valid UTF-8"}},
      // G10
      {"0 dimensions", t1([](Ti& t) { t.ne = {}; }), {"0 dimensions"}},
      {"5 dimensions", t1([](Ti& t) { t.ne = {32, 1, 1, 1, 1}; }), {"5 dimensions"}},
      {"dimension 0", t1([](Ti& t) { t.ne = {64, 0}; }), {"ne[1] = 0"}},
      {"dimension 2^63", t1([](Ti& t) { t.ne = {64, uint64_t(1) << 63}; }), {"ne[1]"}},
      {"element count overflow", t1([](Ti& t) { t.ne = {uint64_t(1) << 32, uint64_t(1) << 32}; }), {"overflows"}},
      {"element count wrapping to 0", t1([](Ti& t) { t.ne = {uint64_t(1) << 33, uint64_t(1) << 31}; }),
       {"overflows"}},
      // G11
      {"type id 4 (removed)", t1([](Ti& t) { t.type = 4; }), {"ggml type id 4"}},
      {"type id 31 (removed)", t1([](Ti& t) { t.type = 31; }), {"ggml type id 31"}},
      {"type id 1000", t1([](Ti& t) { t.type = 1000; }), {"ggml type id 1000"}},
      // G12
      {"Q8_0 row of 48", t1([](Ti& t) { t.ne = {48, 2}; }), {"not a multiple of Q8_0's block of 32"}},
      {"Q4_K row of 128", t1([](Ti& t) { t.type = 12; t.ne = {128, 2}; }), {"Q4_K's block of 256"}},
      // G13
      {"offset not aligned", t1([](Ti& t) { t.offset = 65; }), {"not a multiple of the alignment"}},
      {"gap between tensors", t1([](Ti& t) { t.offset = 96; }), {"where 64 was expected"}},
      {"overlapping tensors", t1([](Ti& t) { t.offset = 0; }), {"where 64 was expected"}},
      {"data section one byte short", nullptr, {"needs bytes", "of the data section"},
       [](std::vector<uint8_t>& b) { b.resize(b.size() - 29); }},
      {"tensor far past the end", t1([](Ti& t) { t.ne = {64, 1 << 20}; }), {"needs bytes"}},
  };
}

TEST(Gguf, MalformedCorpusGivesClearErrors) {
  const auto cases = corpus();
  EXPECT_GE(cases.size(), 40u);
  for (const Case& c : cases) {
    Image im;
    if (c.make) c.make(im);
    std::vector<uint8_t> img = im.bytes();
    if (c.patch) c.patch(img);
    const std::string e = parse_error(img);
    ASSERT_FALSE(e.empty()) << c.what << ": accepted";
    EXPECT_EQ(e.rfind("t.gguf", 0), 0u) << c.what << ": the message does not name the file: " << e;
    for (const std::string& p : c.expect) EXPECT_NE(e.find(p), std::string::npos) << c.what << ": " << e;
    EXPECT_LT(e.size(), 400u) << c.what << ": message too long";
  }
}

// Trailing bytes after the last tensor are ignored (a documented decision, G14).
TEST(Gguf, TrailingBytesAreIgnored) {
  auto img = Image().bytes();
  img.resize(img.size() + 100, 0x5a);
  EXPECT_EQ(parse_error(img), "");
}

TEST(Gguf, RealFilesMatchGgmlReader) {
  const std::string root = std::string(DS_SOURCE_DIR) + "/../shared/fixtures/gguf/";
  if (!std::filesystem::exists(root)) GTEST_SKIP() << root << " is missing (../shared beside the repository)";
  std::ifstream lf(fixture("gguf/listing.json"));
  ASSERT_TRUE(lf.good());
  const auto listing = nlohmann::json::parse(lf);
  ASSERT_GE(listing.size(), 20u);
  for (const auto& [rel, want] : listing.items()) {
    SCOPED_TRACE(rel);
    auto m = GgufModel::open(root + rel);
    const GgufFile& f = m->first();
    EXPECT_EQ(f.version(), want["version"].get<uint32_t>());
    EXPECT_EQ(f.alignment(), want["alignment"].get<uint32_t>());
    EXPECT_EQ(f.data_offset(), want["data_offset"].get<uint64_t>());
    ASSERT_EQ(f.metadata().size(), want["kv"].size());
    for (const auto& [key, wv] : want["kv"].items()) {
      const GgufValue* v = f.find(key);
      ASSERT_NE(v, nullptr) << key;
      EXPECT_EQ(gguf_type_name(v->type), wv["type"].get<std::string>()) << key;
      if (v->type == GgufType::ARRAY) {
        EXPECT_EQ(gguf_type_name(v->elem), wv["elem"].get<std::string>()) << key;
        EXPECT_EQ(v->size(), wv["len"].get<size_t>()) << key;
      } else if (v->type == GgufType::STRING) {
        ASSERT_EQ(v->s.size(), wv["len"].get<size_t>()) << key;
        const auto head = wv["head"].get<std::vector<int>>();
        for (size_t i = 0; i < head.size(); ++i) EXPECT_EQ(uint8_t(v->s[i]), head[i]) << key << " byte " << i;
      } else if (v->type == GgufType::F32 || v->type == GgufType::F64) {
        EXPECT_EQ(v->f, wv["value"].get<double>()) << key;
      } else {
        EXPECT_EQ(v->i, wv["value"].get<int64_t>()) << key;
      }
    }
    ASSERT_EQ(f.tensors().size(), want["tensors"].size());
    for (size_t i = 0; i < f.tensors().size(); ++i) {
      const GgufTensor& t = f.tensors()[i];
      const auto& wt = want["tensors"][i];
      EXPECT_EQ(t.name, wt["name"].get<std::string>());
      EXPECT_EQ(t.type, wt["type"].get<uint32_t>()) << t.name;
      EXPECT_EQ(t.ne, wt["ne"].get<std::vector<int64_t>>()) << t.name;
      EXPECT_EQ(t.offset, wt["offset"].get<uint64_t>()) << t.name;
    }
  }
}

TEST(Gguf, SplitSetsOpenFromTheFirstPart) {
  TempDir d;
  auto part = [](int no, int count, std::vector<Ti> ts) {
    Image im;
    im.kv.push_back({"split.no", 2, val<uint16_t>(uint16_t(no))});
    im.kv.push_back({"split.count", 2, val<uint16_t>(uint16_t(count))});
    im.kv.push_back({"split.tensors.count", 5, val<int32_t>(3)});
    im.tensors = std::move(ts);
    return im.bytes();
  };
  const std::string p1 = d / "m-00001-of-00002.gguf", p2 = d / "m-00002-of-00002.gguf";
  write_file(p1, part(0, 2, {{"a.weight", {4}, 0, -1, 16}, {"b.weight", {4}, 0, -1, 16}}));
  write_file(p2, part(1, 2, {{"c.weight", {32}, 8, -1, 34}}));
  auto m = GgufModel::open(p1);
  EXPECT_EQ(m->parts().size(), 2u);
  ASSERT_EQ(m->tensors().size(), 3u);
  ASSERT_NE(m->tensor("c.weight"), nullptr);
  EXPECT_EQ(m->tensor("c.weight")->file, 1);
  EXPECT_EQ(m->get_int("split.count"), 2);
  auto err = [](const std::function<void()>& f) {
    try {
      f();
    } catch (const ds::Error& e) {
      return std::string(e.what());
    }
    return std::string();
  };
  EXPECT_NE(err([&] { GgufModel::open(p2); }).find("give the first part"), std::string::npos);
  write_file(p2, part(1, 2, {{"a.weight", {4}, 0, -1, 16}}));
  EXPECT_NE(err([&] { GgufModel::open(p1); }).find("also appears in an earlier part"), std::string::npos);
  write_file(p2, part(0, 2, {{"c.weight", {32}, 8, -1, 34}}));
  EXPECT_NE(err([&] { GgufModel::open(p1); }).find("split.no = 0"), std::string::npos);
  std::filesystem::remove(p2);
  EXPECT_NE(err([&] { GgufModel::open(p1); }).find("does not exist"), std::string::npos);
  // Typed access names the key and the types.
  write_file(p2, part(1, 2, {{"c.weight", {32}, 8, -1, 34}}));
  m = GgufModel::open(p1);
  EXPECT_NE(err([&] { m->get_int("general.architecture"); }).find("must be an integer, found string"),
            std::string::npos);
  EXPECT_NE(err([&] { m->get_string("nope.key"); }).find("'nope.key' is missing"), std::string::npos);
  EXPECT_EQ(m->get_float("deepseek2.rope.freq_base"), 10000.0);
}

}  // namespace
}  // namespace ds::io::test
