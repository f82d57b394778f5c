// SPDX-License-Identifier: MIT
// read_json_file / parse_json_text (size cap, depth limit, duplicate keys, UTF-8) and MmapFile basics.
#include "io/json_util.h"

#include <gtest/gtest.h>

#include "io/mmap_file.h"
#include "io_test_util.h"

namespace ds::io {
namespace {

TEST(JsonUtil, ParsesAndReportsErrorsWithLabel) {
  const Json j = parse_json_text(" {\"a\": [1, 2, {\"b\": null}], \"c\": \"d\"} \n", "x.json");
  EXPECT_EQ(j["a"][1], 2);
  EXPECT_DS_ERROR(parse_json_text("{\"a\": }", "x.json"), "x.json", "invalid JSON", "line 1");
  EXPECT_DS_ERROR(parse_json_text("{\"a\": 1, \"a\": 2}", "x.json"), "x.json", "duplicate JSON key 'a'");
  EXPECT_DS_ERROR(parse_json_text("[{\"k\": 1, \"j\": {\"k\": 2, \"k\": 3}}]", "x.json"), "duplicate JSON key 'k'");
  // The same key in different objects is fine.
  EXPECT_NO_THROW(parse_json_text("{\"k\": {\"k\": 1}, \"j\": {\"k\": 2}}", "x.json"));
  EXPECT_DS_ERROR(parse_json_text("\"\xff\"", "x.json"), "x.json", "UTF-8");
}

TEST(JsonUtil, DepthLimit) {
  std::string ok, bad;
  for (int i = 0; i < kMaxJsonDepth; ++i) ok += "[";
  for (int i = 0; i < kMaxJsonDepth; ++i) ok += "]";
  EXPECT_NO_THROW(parse_json_text(ok, "d.json"));
  bad = "[" + ok + "]";
  EXPECT_DS_ERROR(parse_json_text(bad, "d.json"), "d.json", "nesting deeper than 64");
  // Brackets inside strings do not count.
  EXPECT_NO_THROW(parse_json_text("{\"s\": \"" + std::string(200, '[') + "\\\"[[\"}", "d.json"));
}

TEST(JsonUtil, Utf8Validator) {
  EXPECT_TRUE(is_valid_utf8("plain ascii"));
  EXPECT_TRUE(is_valid_utf8("\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80"));  // é € 😀
  EXPECT_FALSE(is_valid_utf8("\x80"));
  EXPECT_FALSE(is_valid_utf8("\xc3"));              // truncated
  EXPECT_FALSE(is_valid_utf8("\xe0\x80\xaf"));      // overlong
  EXPECT_FALSE(is_valid_utf8("\xf4\x90\x80\x80"));  // > U+10FFFF
  EXPECT_FALSE(is_valid_utf8("\xed\xb0\x80"));      // lone surrogate
}

TEST(JsonUtil, ReadFile) {
  test::TempDir d;
  test::write_text(d / "c.json", "{\"hidden_size\": 64}");
  EXPECT_EQ(read_json_file(d / "c.json")["hidden_size"], 64);
  EXPECT_DS_ERROR(read_json_file(d / "c.json", 10), "c.json", "limit");
  EXPECT_DS_ERROR(read_json_file(d / "missing.json"), "missing.json", "No such file");
  test::write_text(d / "e.json", "");
  EXPECT_DS_ERROR(read_json_file(d / "e.json"), "e.json", "invalid JSON");
  EXPECT_NO_THROW(read_json_file(test::fixture("models/tiny-v3/config.json")));
}

TEST(MmapFile, EmptyMissingAndDirectory) {
  test::TempDir d;
  test::write_text(d / "empty", "");
  MmapFile e(d / "empty");
  EXPECT_EQ(e.size(), 0u);
  EXPECT_EQ(e.data(), nullptr);
  test::write_text(d / "abc", "abc");
  MmapFile f(d / "abc");
  ASSERT_EQ(f.size(), 3u);
  EXPECT_EQ(f.data()[2], 'c');
  EXPECT_EQ(f.path(), d / "abc");
  EXPECT_DS_ERROR(MmapFile(d / "nope"), d / "nope", "No such file");
  EXPECT_DS_ERROR(MmapFile(d.path()), d.path(), "not a regular file");
}

}  // namespace
}  // namespace ds::io
