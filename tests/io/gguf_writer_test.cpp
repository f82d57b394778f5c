// SPDX-License-Identifier: MIT
// Streaming GGUF writer (io/gguf_writer.h) against the reader (io/gguf.h): every metadata value type comes back as
// written, tensors sit at aligned offsets with their bytes (given in pieces, across tensor boundaries), the file has
// the size announced; misuse and invalid input are errors naming the file and the key or tensor.
#include <gtest/gtest.h>

#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>

#include "base/error.h"
#include "expect_error.h"
#include "io/gguf.h"
#include "io/gguf_writer.h"

namespace ds::test {
namespace {

namespace fs = std::filesystem;
using io::GgufType;

fs::path tmp(const std::string& name) {
  return fs::temp_directory_path() / ("ds_gguf_writer_" + std::to_string(::getpid()) + "_" + name);
}

TEST(GgufWriter, EveryValueTypeAndTensorsRoundTrip) {
  const fs::path p = tmp("all.gguf");
  io::GgufWriter w(p.string());
  w.set_u8("t.u8", 200);
  w.set_i8("t.i8", -100);
  w.set_u16("t.u16", 60000);
  w.set_i16("t.i16", -30000);
  w.set_u32("t.u32", 4000000000u);
  w.set_i32("t.i32", -2000000000);
  w.set_u64("t.u64", uint64_t(1) << 62);
  w.set_i64("t.i64", -(int64_t(1) << 60));
  w.set_f32("t.f32", 0.1f);
  w.set_f64("t.f64", 1e300);
  w.set_bool("t.bool", true);
  w.set_string("t.str", "h\xC3\xA9llo");
  w.set_strings("t.strs", {"a", "", "\xE4\xB8\x80 b"});
  w.set_ints("t.i32s", GgufType::I32, {-1, 0, 2147483647});
  w.set_ints("t.u8s", GgufType::U8, {0, 255});
  w.set_ints("t.u64s", GgufType::U64, {0, int64_t(1) << 40});
  w.set_floats("t.f32s", GgufType::F32, {1.5, -2.25});
  w.set_floats("t.f64s", GgufType::F64, {1e-300});
  w.set_bools("t.bools", {true, false});
  w.set_strings("t.empty", {});
  w.set_u32("t.u32", 7);  // replaces the value in place
  w.add_tensor("a", {32, 3}, io::ggml_type_of(DType::Q8_0));  // 3 * 34 = 102 bytes: padded to 128
  w.add_tensor("b", {5}, io::ggml_type_of(DType::F32));       // 20 bytes
  w.add_tensor("c.weight", {256, 2, 2}, io::ggml_type_of(DType::Q4_K));
  std::vector<uint8_t> data(102 + 20 + 4 * 144);
  for (size_t i = 0; i < data.size(); ++i) data[i] = uint8_t(i * 7 + 1);
  w.write_header();
  // Pieces that end inside a tensor and pieces that span two.
  w.write_data(data.data(), 50);
  w.write_data(data.data() + 50, 60);
  w.write_data(data.data() + 110, data.size() - 110);
  EXPECT_EQ(w.current_tensor(), 3u);
  w.finish();
  EXPECT_EQ(fs::file_size(p), w.file_bytes());

  auto f = io::GgufFile::open(p.string());
  EXPECT_EQ(f->version(), 3u);
  EXPECT_EQ(f->alignment(), 32u);
  auto get = [&](const char* k) -> const io::GgufValue& {
    const io::GgufValue* v = f->find(k);
    EXPECT_TRUE(v) << k;
    static io::GgufValue none;
    return v ? *v : none;
  };
  EXPECT_EQ(get("t.u8").type, GgufType::U8);
  EXPECT_EQ(get("t.u8").i, 200);
  EXPECT_EQ(get("t.i8").i, -100);
  EXPECT_EQ(get("t.u16").i, 60000);
  EXPECT_EQ(get("t.i16").i, -30000);
  EXPECT_EQ(get("t.u32").i, 7);
  EXPECT_EQ(get("t.i32").i, -2000000000);
  EXPECT_EQ(get("t.u64").u, uint64_t(1) << 62);
  EXPECT_EQ(get("t.i64").i, -(int64_t(1) << 60));
  EXPECT_EQ(get("t.f32").type, GgufType::F32);
  EXPECT_EQ(float(get("t.f32").f), 0.1f);
  EXPECT_EQ(get("t.f64").f, 1e300);
  EXPECT_EQ(get("t.bool").type, GgufType::BOOL);
  EXPECT_EQ(get("t.bool").i, 1);
  EXPECT_EQ(get("t.str").s, "h\xC3\xA9llo");
  EXPECT_EQ(get("t.strs").strs, (std::vector<std::string>{"a", "", "\xE4\xB8\x80 b"}));
  EXPECT_EQ(get("t.i32s").elem, GgufType::I32);
  EXPECT_EQ(get("t.i32s").ints, (std::vector<int64_t>{-1, 0, 2147483647}));
  EXPECT_EQ(get("t.u8s").ints, (std::vector<int64_t>{0, 255}));
  EXPECT_EQ(get("t.u64s").ints, (std::vector<int64_t>{0, int64_t(1) << 40}));
  EXPECT_EQ(get("t.f32s").floats, (std::vector<double>{1.5, -2.25}));
  EXPECT_EQ(get("t.f64s").floats, (std::vector<double>{1e-300}));
  EXPECT_EQ(get("t.bools").elem, GgufType::BOOL);
  EXPECT_EQ(get("t.bools").ints, (std::vector<int64_t>{1, 0}));
  EXPECT_EQ(get("t.empty").size(), 0u);
  EXPECT_EQ(f->metadata().size(), 20u);

  ASSERT_EQ(f->tensors().size(), 3u);
  const io::GgufTensor* a = f->tensor("a");
  const io::GgufTensor* b = f->tensor("b");
  const io::GgufTensor* c = f->tensor("c.weight");
  ASSERT_TRUE(a && b && c);
  EXPECT_EQ(a->ne, (std::vector<int64_t>{32, 3}));
  EXPECT_EQ(b->offset, 128u);
  EXPECT_EQ(c->offset, 160u);
  EXPECT_EQ(c->ne, (std::vector<int64_t>{256, 2, 2}));
  EXPECT_EQ(std::memcmp(a->data, data.data(), 102), 0);
  EXPECT_EQ(std::memcmp(b->data, data.data() + 102, 20), 0);
  EXPECT_EQ(std::memcmp(c->data, data.data() + 122, 4 * 144), 0);
  // The padding between and after tensors is zeros, and the file ends with the last tensor's padding.
  const uint8_t* base = a->data;
  for (size_t i = 102; i < 128; ++i) EXPECT_EQ(base[i], 0) << i;
  EXPECT_EQ(f->data_offset() + 160 + 4 * 144, fs::file_size(p));
  fs::remove(p);
}

TEST(GgufWriter, OtherAlignmentIsRecorded) {
  const fs::path p = tmp("align.gguf");
  io::GgufWriter w(p.string(), 64);
  w.add_tensor("x", {3}, 0);
  w.add_tensor("y", {2}, 0);
  w.write_header();
  const float v[5] = {1, 2, 3, 4, 5};
  w.write_data(v, sizeof v);
  w.finish();
  auto f = io::GgufFile::open(p.string());
  EXPECT_EQ(f->alignment(), 64u);
  EXPECT_EQ(f->data_offset() % 64, 0u);
  EXPECT_EQ(f->tensor("y")->offset, 64u);
  EXPECT_EQ(reinterpret_cast<const float*>(f->tensor("y")->data)[1], 5.f);
  fs::remove(p);
}

TEST(GgufWriter, MetadataOnlyFile) {
  const fs::path p = tmp("meta.gguf");
  io::GgufWriter w(p.string());
  w.set_string("general.architecture", "deepseek2");
  w.write_header();
  w.finish();
  auto f = io::GgufFile::open(p.string());
  EXPECT_TRUE(f->tensors().empty());
  EXPECT_EQ(f->find("general.architecture")->s, "deepseek2");
  fs::remove(p);
}

TEST(GgufWriter, ErrorsNameTheFileAndWhat) {
  const fs::path p = tmp("bad.gguf");
  const std::string ps = p.string();
  {
    io::GgufWriter w(ps);
    EXPECT_TRUE(throws_with([&] { w.set_u32("", 1); }, {ps, "1 to 65535"}));
    EXPECT_TRUE(throws_with([&] { w.set_u32("bad\nkey", 1); }, {ps, "printable ASCII"}));
    EXPECT_TRUE(throws_with([&] { w.set_ints("k", GgufType::U8, {256}); }, {ps, "'k'", "256", "u8"}));
    EXPECT_TRUE(throws_with([&] { w.set_ints("k", GgufType::F32, {1}); }, {ps, "not an integer type"}));
    EXPECT_TRUE(throws_with([&] { w.add_tensor("t", {33}, io::ggml_type_of(DType::Q8_0)); },
                            {ps, "'t'", "33", "Q8_0", "32"}));
    EXPECT_TRUE(throws_with([&] { w.add_tensor(std::string(64, 'n'), {1}, 0); }, {ps, "1 to 63 bytes"}));
    EXPECT_TRUE(throws_with([&] { w.add_tensor("t", {1, 0}, 0); }, {ps, "'t'", ">= 1"}));
    EXPECT_TRUE(throws_with([&] { w.add_tensor("t", {1, 1, 1, 1, 1}, 0); }, {ps, "5 dimensions"}));
    EXPECT_TRUE(throws_with([&] { w.add_tensor("t", {1}, 4); }, {ps, "type id 4"}));
    EXPECT_TRUE(throws_with([&] { w.write_data("x", 1); }, {ps, "before the header"}));
    w.add_tensor("t", {4}, 0);
    EXPECT_TRUE(throws_with([&] { w.add_tensor("t", {4}, 0); }, {ps, "'t'", "appears twice"}));
    w.write_header();
    EXPECT_TRUE(throws_with([&] { w.set_u32("late", 1); }, {ps, "'late'", "after the header"}));
    EXPECT_TRUE(throws_with([&] { w.add_tensor("u", {4}, 0); }, {ps, "'u'", "after the header"}));
    const float v[5] = {};
    w.write_data(v, 8);
    EXPECT_TRUE(throws_with([&] { w.finish(); }, {ps, "'t'", "8 of its 16 bytes", "incomplete"}));
  }
  {
    io::GgufWriter w(ps);
    w.add_tensor("t", {1}, 0);
    w.write_header();
    const float v[2] = {};
    EXPECT_TRUE(throws_with([&] { w.write_data(v, 8); }, {ps, "past the last tensor"}));
  }
  EXPECT_TRUE(throws_with([] { io::GgufWriter w("/nonexistent-dir/x.gguf"); w.write_header(); },
                          {"/nonexistent-dir/x.gguf", "cannot create"}));
  EXPECT_TRUE(throws_with([] { io::GgufWriter w("x.gguf", 48); }, {"x.gguf", "power of two"}));
  EXPECT_TRUE(throws_with([] { io::ggml_type_of(DType::F8_E4M3); }, {"F8_E4M3"}));
  fs::remove(p);
}

}  // namespace
}  // namespace ds::test
