// SPDX-License-Identifier: MIT
// Safetensors validation: every malformed case of reliability.md S1-S8 is built in memory and must fail with a
// message naming the file and (where there is one) the tensor; valid edge cases and the fixture models must load.
#include "io/safetensors.h"

#include <gtest/gtest.h>

#include <map>

#include "io_test_util.h"

namespace ds::io {
namespace {

using test::entry;
using test::st_image;
using test::st_raw;

const std::string kLabel = "t.safetensors";

std::unique_ptr<SafetensorsFile> parse(const std::vector<uint8_t>& img) {
  return SafetensorsFile::parse(img.data(), img.size(), kLabel);
}

// Expects parse to fail; the message must name the file plus every extra needle.
void expect_bad(const std::vector<uint8_t>& img, std::initializer_list<std::string> needles) {
  test::expect_error([&] { parse(img); }, {kLabel});
  test::expect_error([&] { parse(img); }, needles);
}

// A one-tensor header {"x": <entry body>} with `data` bytes of buffer.
std::vector<uint8_t> one(const std::string& body, size_t data) { return st_image("{\"x\":" + body + "}", data); }

// ---- valid files ------------------------------------------------------------------------------------------

TEST(Safetensors, ValidTwoTensorsOutOfOrderInJson) {
  const std::string h = "{" + entry("b", "BF16", "[3,4]", "[8,32]") + "," + entry("a", "F32", "[2]", "[0,8]") +
                        ",\"__metadata__\":{\"format\":\"pt\"}}";
  const auto img = st_image(h, 32);
  auto st = parse(img);
  ASSERT_EQ(st->tensors().size(), 2u);
  EXPECT_EQ(st->tensors()[0].name, "a");  // file (offset) order
  const TensorInfo* b = st->find("b");
  ASSERT_NE(b, nullptr);
  EXPECT_EQ(b->dtype, DType::BF16);
  EXPECT_EQ(b->shape, (std::vector<int64_t>{3, 4}));
  EXPECT_EQ(b->numel(), 12);
  EXPECT_EQ(b->nbytes(), 24u);
  EXPECT_EQ(b->data, img.data() + img.size() - 24);  // the last 24 bytes
  EXPECT_EQ(st->find("c"), nullptr);
  EXPECT_EQ(st->metadata().at("format"), "pt");
  EXPECT_EQ(st->path(), kLabel);
}

TEST(Safetensors, LeadingWhitespaceAndTrailingPaddingAccepted) {
  const std::string body = "{" + entry("a", "F32", "[2]", "[0,8]") + "}";
  EXPECT_EQ(parse(st_image("   \n\t" + body, 8))->tensors().size(), 1u);
  EXPECT_EQ(parse(st_image(body + "       ", 8))->tensors().size(), 1u);
  EXPECT_EQ(parse(st_image("  " + body + "  \n ", 8))->tensors().size(), 1u);
}

TEST(Safetensors, EmptyTensorsAndScalarAccepted) {
  // Zero-size tensors may share an offset with the next tensor (reference behaviour, documented in the header).
  const std::string h = "{" + entry("e0", "F32", "[0]", "[0,0]") + "," + entry("s", "F32", "[]", "[0,4]") + "," +
                        entry("e1", "BF16", "[2,0,3]", "[4,4]") + "," + entry("e2", "I64", "[0,5]", "[4,4]") + "}";
  auto st = parse(st_image(h, 4));
  ASSERT_EQ(st->tensors().size(), 4u);
  EXPECT_EQ(st->find("s")->numel(), 1);
  EXPECT_TRUE(st->find("s")->shape.empty());
  EXPECT_EQ(st->find("e1")->numel(), 0);
  EXPECT_EQ(st->find("e2")->nbytes(), 0u);
}

TEST(Safetensors, NoTensorsAccepted) {
  EXPECT_TRUE(parse(st_image("{}", 0))->tensors().empty());
  auto st = parse(st_image("{\"__metadata__\":{}}", 0));
  EXPECT_TRUE(st->tensors().empty());
  EXPECT_TRUE(st->metadata().empty());
}

TEST(Safetensors, AllKnownDtypes) {
  const std::map<std::string, int> sizes = {
      {"F32", 4}, {"F16", 2}, {"BF16", 2}, {"F8_E4M3", 1}, {"F8_E5M2", 1}, {"F64", 8}, {"I64", 8}, {"I32", 4},
      {"I16", 2}, {"I8", 1},  {"U8", 1},   {"BOOL", 1},    {"U16", 2},     {"U32", 4}, {"U64", 8}, {"F8_E8M0", 1}};
  for (const auto& [name, size] : sizes) {
    SCOPED_TRACE(name);
    auto st =
        parse(one("{\"dtype\":\"" + name + "\",\"shape\":[3],\"data_offsets\":[0," + std::to_string(3 * size) + "]}",
                  size_t(3 * size)));
    EXPECT_EQ(dtype_name(st->find("x")->dtype), name);
  }
}

// ---- S1: length prefix ------------------------------------------------------------------------------------

TEST(Safetensors, S1_TooSmall) {
  for (size_t n = 0; n < 8; ++n) {
    std::vector<uint8_t> img(n, 0);
    expect_bad(img, {"too small"});
  }
}

TEST(Safetensors, S1_HeaderLength) {
  expect_bad(st_raw(0, "{}", 0), {"header length is 0"});
  expect_bad(st_raw(100'000'001, "{}", 0), {"header length 100000001", "limit"});
  expect_bad(st_raw(UINT64_MAX, "{}", 0), {"limit"});  // N + 8 would overflow
  expect_bad(st_raw(UINT64_MAX - 7, "{}", 0), {"limit"});
  expect_bad(st_raw(50, "{}", 4), {"runs past the end"});  // N + 8 > file size
  expect_bad(st_raw(3, "{}", 0), {"runs past the end"});
  expect_bad(st_raw(100'000'000, "{}", 0), {"runs past the end"});
}

// ---- S2: header text --------------------------------------------------------------------------------------

TEST(Safetensors, S2_NotUtf8) {
  expect_bad(st_image("{\"a\xff\":1}", 0), {"UTF-8"});
  expect_bad(st_image("{\"\xc0\xaf\":1}", 0), {"UTF-8"});      // overlong '/'
  expect_bad(st_image("{\"\xed\xa0\x80\":1}", 0), {"UTF-8"});  // surrogate
  expect_bad(st_image("\xEF\xBB\xBF{}", 0), {"byte-order mark"});
}

TEST(Safetensors, S2_NotJson) {
  expect_bad(st_image("hello", 0), {"invalid JSON"});
  expect_bad(st_image("{", 0), {"invalid JSON"});
  expect_bad(st_image("{\"x\":{\"dtype\":\"F32\",}}", 0), {"invalid JSON"});
  expect_bad(st_image("{} x", 0), {"invalid JSON"});  // trailing non-whitespace
  expect_bad(st_image("{}{}", 0), {"invalid JSON"});
  // nlohmann stops at a NUL; the reference (serde) rejects it. A NUL must not hide bytes after it.
  expect_bad(st_image(std::string("{}\0\0", 4), 0), {"NUL byte"});
  expect_bad(st_image(std::string("{}\0{\"x\":1}", 10), 0), {"NUL byte"});
}

TEST(Safetensors, S2_TooDeep) {
  std::string deep = "{\"__metadata__\":";
  for (int i = 0; i < 70; ++i) deep += "[";
  for (int i = 0; i < 70; ++i) deep += "]";
  deep += "}";
  expect_bad(st_image(deep, 0), {"nesting"});
  std::string very_deep(100000, '[');  // never recursed into
  expect_bad(st_image(very_deep, 0), {"nesting"});
}

TEST(Safetensors, S2_TopLevelNotObject) {
  expect_bad(st_image("[]", 0), {"must be a JSON object", "array"});
  expect_bad(st_image("42", 0), {"must be a JSON object"});
  expect_bad(st_image("\"x\"", 0), {"must be a JSON object"});
}

// ---- S3: entry schema -------------------------------------------------------------------------------------

TEST(Safetensors, S3_MissingAndUnknownFields) {
  expect_bad(one("{\"shape\":[1],\"data_offsets\":[0,4]}", 4), {"tensor 'x'", "missing field 'dtype'"});
  expect_bad(one("{\"dtype\":\"F32\",\"data_offsets\":[0,4]}", 4), {"tensor 'x'", "missing field 'shape'"});
  expect_bad(one("{\"dtype\":\"F32\",\"shape\":[1]}", 4), {"tensor 'x'", "missing field 'data_offsets'"});
  expect_bad(one("{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4],\"extra\":1}", 4),
             {"tensor 'x'", "unknown field 'extra'"});
  expect_bad(one("[\"F32\",[1],[0,4]]", 4), {"tensor 'x'", "must be an object"});
  expect_bad(one("null", 0), {"tensor 'x'", "must be an object"});
}

TEST(Safetensors, S3_Dtype) {
  expect_bad(one("{\"dtype\":\"F4\",\"shape\":[2],\"data_offsets\":[0,1]}", 1), {"tensor 'x'", "'F4'"});
  expect_bad(one("{\"dtype\":\"Q4_K\",\"shape\":[2],\"data_offsets\":[0,1]}", 1), {"tensor 'x'", "'Q4_K'"});
  expect_bad(one("{\"dtype\":\"f32\",\"shape\":[1],\"data_offsets\":[0,4]}", 4), {"tensor 'x'", "'f32'"});
  expect_bad(one("{\"dtype\":\"F6_E2M3\",\"shape\":[4],\"data_offsets\":[0,3]}", 3), {"tensor 'x'", "F6_E2M3"});
  expect_bad(one("{\"dtype\":32,\"shape\":[1],\"data_offsets\":[0,4]}", 4), {"tensor 'x'", "dtype must be a string"});
}

TEST(Safetensors, S3_OffsetsShapeAndNumbers) {
  const auto with = [](const std::string& shape, const std::string& offs, size_t data) {
    return one("{\"dtype\":\"U8\",\"shape\":" + shape + ",\"data_offsets\":" + offs + "}", data);
  };
  expect_bad(with("[4]", "[0]", 4), {"tensor 'x'", "data_offsets must be [begin, end]"});
  expect_bad(with("[4]", "[0,4,4]", 4), {"tensor 'x'", "data_offsets must be [begin, end]"});
  expect_bad(with("[4]", "{\"a\":0}", 4), {"tensor 'x'", "data_offsets must be [begin, end]"});
  expect_bad(with("4", "[0,4]", 4), {"tensor 'x'", "shape must be an array"});
  expect_bad(with("[4]", "[-1,3]", 4), {"tensor 'x'", "data_offsets[0]", "non-negative integer", "-1"});
  expect_bad(with("[4]", "[0,4.0]", 4), {"tensor 'x'", "data_offsets[1]", "non-negative integer"});
  expect_bad(with("[4]", "[0,\"4\"]", 4), {"tensor 'x'", "data_offsets[1]"});
  expect_bad(with("[4]", "[0,4e0]", 4), {"tensor 'x'", "data_offsets[1]"});
  expect_bad(with("[-4]", "[0,4]", 4), {"tensor 'x'", "shape[0]", "non-negative integer"});
  expect_bad(with("[2,1.5]", "[0,3]", 3), {"tensor 'x'", "shape[1]"});
  expect_bad(with("[2,2.0]", "[0,4]", 4), {"tensor 'x'", "shape[1]"});
  expect_bad(with("[true]", "[0,1]", 1), {"tensor 'x'", "shape[0]"});
  expect_bad(with("[null]", "[0,1]", 1), {"tensor 'x'", "shape[0]"});
  expect_bad(with("[9007199254740993.0]", "[0,4]", 4), {"tensor 'x'", "shape[0]"});           // > 2^53 as a float
  expect_bad(with("[4]", "[0,18446744073709551616]", 4), {"tensor 'x'", "data_offsets[1]"});  // 2^64
  expect_bad(with("[99999999999999999999999]", "[0,4]", 4), {"tensor 'x'", "shape[0]"});
  expect_bad(with("[0,9223372036854775808]", "[0,0]", 0), {"tensor 'x'", "larger than 2^63-1"});
}

// ---- S4: ranges -------------------------------------------------------------------------------------------

TEST(Safetensors, S4_Offsets) {
  expect_bad(one("{\"dtype\":\"U8\",\"shape\":[0],\"data_offsets\":[4,0]}", 4), {"tensor 'x'", "end is before begin"});
  expect_bad(one("{\"dtype\":\"U8\",\"shape\":[4],\"data_offsets\":[4,8]}", 8),
             {"tensor 'x'", "[4, 8]", "first tensor must start at byte 0"});
  const std::string gap = "{" + entry("a", "U8", "[4]", "[0,4]") + "," + entry("b", "U8", "[4]", "[6,10]") + "}";
  expect_bad(st_image(gap, 10), {"tensor 'b'", "gap of 2 bytes", "'a'"});
  const std::string overlap = "{" + entry("a", "U8", "[4]", "[0,4]") + "," + entry("b", "U8", "[4]", "[2,6]") + "}";
  expect_bad(st_image(overlap, 6), {"tensor 'b'", "overlaps tensor 'a'"});
  const std::string same = "{" + entry("a", "U8", "[4]", "[0,4]") + "," + entry("b", "U8", "[4]", "[0,4]") + "}";
  expect_bad(st_image(same, 4), {"overlaps tensor 'a'"});
  // A zero-size tensor in the middle of another tensor's range is not contiguous.
  const std::string inside = "{" + entry("a", "U8", "[8]", "[0,8]") + "," + entry("z", "U8", "[0]", "[4,4]") + "}";
  expect_bad(st_image(inside, 8), {"tensor"});
  // Zero-size tensors past the end of the buffer.
  const std::string past = "{" + entry("a", "U8", "[8]", "[0,8]") + "," + entry("z", "U8", "[0]", "[9,9]") + "}";
  expect_bad(st_image(past, 8), {"tensor 'z'", "gap"});
}

// ---- S5: sizes --------------------------------------------------------------------------------------------

TEST(Safetensors, S5_SizeMismatchAndOverflow) {
  expect_bad(one("{\"dtype\":\"BF16\",\"shape\":[3,4],\"data_offsets\":[0,10]}", 10),
             {"t.safetensors: tensor 'x': data_offsets [0, 10] span 10 bytes but shape [3,4] of BF16 needs 24"});
  expect_bad(one("{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,16]}", 16), {"span 16 bytes", "needs 12"});
  // Element count overflow, including products that would wrap to exactly 0 with an empty range.
  expect_bad(one("{\"dtype\":\"U8\",\"shape\":[4294967296,4294967296],\"data_offsets\":[0,0]}", 0),
             {"tensor 'x'", "overflows"});
  expect_bad(one("{\"dtype\":\"U8\",\"shape\":[4294967296,4294967296,2],\"data_offsets\":[0,0]}", 0),
             {"tensor 'x'", "overflows"});
  // Bit count overflow (2^61 elements of 32 bits).
  expect_bad(one("{\"dtype\":\"F32\",\"shape\":[2305843009213693952],\"data_offsets\":[0,0]}", 0),
             {"tensor 'x'", "overflows"});
  // Byte count that fits but is not what the range holds.
  expect_bad(one("{\"dtype\":\"U8\",\"shape\":[1099511627776],\"data_offsets\":[0,4]}", 4), {"needs 1099511627776"});
}

// ---- S6: buffer coverage ----------------------------------------------------------------------------------

TEST(Safetensors, S6_TrailingOrMissingBytes) {
  const std::string h = "{" + entry("a", "F32", "[2]", "[0,8]") + "}";
  expect_bad(st_image(h, 9), {"1 trailing bytes"});
  expect_bad(st_image(h, 7), {"truncated", "need 8", "has 7"});
  expect_bad(st_image(h, 0), {"truncated"});
  expect_bad(st_image("{}", 1), {"trailing bytes"});
}

// ---- S7: duplicate names ----------------------------------------------------------------------------------

TEST(Safetensors, S7_DuplicateKeys) {
  const std::string h = "{" + entry("a", "F32", "[1]", "[0,4]") + "," + entry("a", "F32", "[1]", "[4,8]") + "}";
  expect_bad(st_image(h, 8), {"duplicate JSON key 'a'"});
  // Duplicates that would not leave a hole (last-wins parsers accept this silently).
  const std::string h2 = "{" + entry("a", "F32", "[1]", "[0,4]") + "," + entry("a", "F32", "[1]", "[0,4]") + "}";
  expect_bad(st_image(h2, 4), {"duplicate JSON key 'a'"});
  expect_bad(one("{\"dtype\":\"F32\",\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}", 4),
             {"duplicate JSON key 'dtype'"});
  expect_bad(st_image("{\"__metadata__\":{\"k\":\"1\",\"k\":\"2\"}}", 0), {"duplicate JSON key 'k'"});
  expect_bad(st_image("{\"__metadata__\":{},\"__metadata__\":{}}", 0), {"duplicate JSON key '__metadata__'"});
}

// ---- S8: __metadata__ -------------------------------------------------------------------------------------

TEST(Safetensors, S8_Metadata) {
  expect_bad(st_image("{\"__metadata__\":\"pt\"}", 0), {"__metadata__", "string"});
  expect_bad(st_image("{\"__metadata__\":[]}", 0), {"__metadata__", "array"});
  expect_bad(st_image("{\"__metadata__\":null}", 0), {"__metadata__", "null"});
  expect_bad(st_image("{\"__metadata__\":{\"n\":1}}", 0), {"__metadata__", "'n'", "number"});
  expect_bad(st_image("{\"__metadata__\":{\"n\":{\"a\":\"b\"}}}", 0), {"__metadata__", "'n'", "object"});
  // A tensor named __metadata__.
  expect_bad(st_image("{" + entry("__metadata__", "F32", "[1]", "[0,4]") + "}", 4),
             {"__metadata__", "must be a string"});
}

// ---- files on disk ----------------------------------------------------------------------------------------

TEST(Safetensors, OpenErrorsNamePath) {
  EXPECT_DS_ERROR(SafetensorsFile::open("/nonexistent/dir/model.safetensors"), "/nonexistent/dir/model.safetensors",
                  "No such file");
  test::TempDir dir;
  test::write_file(dir / "bad.safetensors", st_raw(10, "{}", 0));
  EXPECT_DS_ERROR(SafetensorsFile::open(dir / "bad.safetensors"), dir / "bad.safetensors", "runs past the end");
  test::write_file(dir / "empty.safetensors", {});
  EXPECT_DS_ERROR(SafetensorsFile::open(dir / "empty.safetensors"), "empty.safetensors", "too small");
}

// Alignment (docs/SECURITY.md): a header whose length leaves the data 7 bytes past a multiple of 8 puts an F32
// tensor at a misaligned address, which the kernels would read through a float pointer. Rejected, naming the file,
// the tensor and the offset; the same tensors behind a header padded to 8 (as the safetensors library writes it) load
// with every tensor aligned in the mapping.
TEST(Safetensors, MisalignedDataIsRejected) {
  const std::string body = "{" + test::entry("w", "F32", "[2]", "[0,8]") + "," +
                           test::entry("h", "BF16", "[2]", "[8,12]") + "}";
  std::string h7 = body;
  while ((8 + h7.size()) % 8 != 7) h7 += ' ';
  test::TempDir dir;
  test::write_file(dir / "odd.safetensors", st_raw(h7.size(), h7, 12));
  EXPECT_DS_ERROR(SafetensorsFile::open(dir / "odd.safetensors"), dir / "odd.safetensors", "tensor 'w'",
                  "file offset " + std::to_string(8 + h7.size()), "F32 element size 4",
                  "files written by the safetensors library are always aligned");
  test::write_file(dir / "ok.safetensors", st_image(body, 12));
  auto st = SafetensorsFile::open(dir / "ok.safetensors");
  for (const auto& t : st->tensors())
    EXPECT_EQ(reinterpret_cast<uintptr_t>(t.data) % size_t(dtype_size(t.dtype)), 0u) << t.name;
  // U8 data may start anywhere.
  std::string u8 = "{" + test::entry("b", "U8", "[3]", "[0,3]") + "}";
  while ((8 + u8.size()) % 8 != 7) u8 += ' ';
  EXPECT_EQ(parse(st_raw(u8.size(), u8, 3))->tensors().size(), 1u);
}

TEST(Safetensors, FixtureModelsOpen) {
  const std::map<std::string, size_t> counts = {
      {"tiny-v3", 207}, {"tiny-v3-fp8", 169}, {"tiny-v2", 137}, {"tiny-v2-lite", 83}};
  for (const auto& [model, count] : counts) {
    SCOPED_TRACE(model);
    auto st = SafetensorsFile::open(test::fixture("models/" + model + "/model.safetensors"));
    EXPECT_EQ(st->tensors().size(), count);
    uint64_t covered = 0;
    for (const TensorInfo& t : st->tensors()) {
      EXPECT_EQ(uint64_t(t.numel()) * uint64_t(dtype_size(t.dtype)), t.nbytes()) << t.name;
      EXPECT_EQ(t.begin, covered) << t.name;
      covered = t.end;
    }
    EXPECT_NE(st->find("model.embed_tokens.weight"), nullptr);
  }
}

TEST(Safetensors, FixtureFp8HasScales) {
  auto st = SafetensorsFile::open(test::fixture("models/tiny-v3-fp8/model.safetensors"));
  int fp8 = 0;
  for (const TensorInfo& t : st->tensors()) {
    if (t.dtype != DType::F8_E4M3) continue;
    ++fp8;
    const TensorInfo* s = st->find(t.name + "_scale_inv");
    ASSERT_NE(s, nullptr) << t.name;
    EXPECT_EQ(s->dtype, DType::F32);
    EXPECT_EQ(s->shape.size(), 2u);
  }
  EXPECT_EQ(fp8, 72);
}

}  // namespace
}  // namespace ds::io
