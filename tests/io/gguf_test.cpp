// SPDX-License-Identifier: MIT
// GGUF reader (io/gguf.h): a valid image built here parses to what was written; every prefix of it is rejected
// (G1); the real GGUF files of ../shared/fixtures/gguf (written by the converters and
// llama.cpp's llama-quantize) parse to exactly what ggml's own Python reader lists (tests/fixtures/gguf/listing.json,
// made by tools/gguf_goldens/listing.py); split sets open from their first part. The malformed-image corpus
// (G2-G16) is in malformed_test.cpp, with the other formats' cases.
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>

#include <nlohmann/json.hpp>

#include "base/error.h"
#include "io/gguf.h"
#include "io/gguf_image.h"
#include "io/io_test_util.h"

namespace ds::io::test {
namespace {

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

// The malformed-image corpus (G2-G13) is in malformed_test.cpp, with the other formats' cases.

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
