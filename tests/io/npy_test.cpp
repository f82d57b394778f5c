// SPDX-License-Identifier: MIT
// .npy: round trips, numpy-compatible header text, versions 2.0/3.0, the fixture arrays, and malformed files.
#include "io/npy.h"

#include <gtest/gtest.h>

#include <cstring>
#include <fstream>
#include <iterator>

#include "io_test_util.h"

namespace ds::io {
namespace {

using test::TempDir;

std::vector<uint8_t> read_all(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return std::vector<uint8_t>((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
}

// A .npy image with the given version, header dict text (padded to 64 with '\n') and raw data.
std::vector<uint8_t> npy_image(int major, const std::string& dict, const std::vector<uint8_t>& data) {
  const size_t prefix = major == 1 ? 10 : 12;
  std::string h = dict;
  while ((prefix + h.size() + 1) % 64 != 0) h += ' ';
  h += '\n';
  std::vector<uint8_t> img = {0x93, 'N', 'U', 'M', 'P', 'Y', uint8_t(major), 0};
  for (size_t i = 0; i < prefix - 8; ++i) img.push_back(uint8_t(h.size() >> (8 * i)));
  img.insert(img.end(), h.begin(), h.end());
  img.insert(img.end(), data.begin(), data.end());
  return img;
}

template <typename T>
std::vector<uint8_t> bytes_of(const std::vector<T>& v) {
  std::vector<uint8_t> b(v.size() * sizeof(T));
  if (!b.empty()) std::memcpy(b.data(), v.data(), b.size());
  return b;
}

TEST(Npy, RoundTripF32AndHeaderText) {
  TempDir d;
  const std::vector<float> v = {1.5f, -2.0f, 3.25f, 0.0f, 1e-30f, 7.0f};
  npy_write_f32(d / "a.npy", v.data(), {2, 3});
  const auto raw = read_all(d / "a.npy");
  const size_t hlen = size_t(raw[8]) | size_t(raw[9]) << 8;
  EXPECT_EQ((10 + hlen) % 64, 0u);
  const std::string header(raw.begin() + 10, raw.begin() + 10 + long(hlen));
  EXPECT_EQ(header.rfind("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }", 0), 0u) << header;
  EXPECT_EQ(header.back(), '\n');
  const NpyArray a = npy_read(d / "a.npy");
  EXPECT_EQ(a.shape, (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(a.descr, "<f4");
  EXPECT_EQ(a.numel(), 6);
  EXPECT_EQ(a.to_f32(), v);
  EXPECT_DS_ERROR(a.to_i64(), "a.npy", "<f4");
}

TEST(Npy, RoundTripI64OneDimAndScalar) {
  TempDir d;
  const std::vector<int64_t> v = {0, -1, INT64_MAX, INT64_MIN, 42};
  npy_write_i64(d / "i.npy", v.data(), {5});
  const auto raw = read_all(d / "i.npy");
  EXPECT_NE(std::string(raw.begin(), raw.end()).find("'shape': (5,), }"), std::string::npos);
  const NpyArray a = npy_read(d / "i.npy");
  EXPECT_EQ(a.to_i64(), v);
  EXPECT_DS_ERROR(a.to_f32(), "i.npy", "<i8");

  const int64_t s = 7;
  npy_write_i64(d / "s.npy", &s, {});
  const NpyArray b = npy_read(d / "s.npy");
  EXPECT_TRUE(b.shape.empty());
  EXPECT_EQ(b.to_i64(), std::vector<int64_t>{7});

  npy_write_f32(d / "e.npy", nullptr, {0, 4});
  const NpyArray e = npy_read(d / "e.npy");
  EXPECT_EQ(e.shape, (std::vector<int64_t>{0, 4}));
  EXPECT_TRUE(e.to_f32().empty());
}

TEST(Npy, WriteErrors) {
  const float x = 0;
  EXPECT_DS_ERROR(npy_write_f32("/nonexistent/dir/x.npy", &x, {1}), "/nonexistent/dir/x.npy");
  TempDir d;
  EXPECT_DS_ERROR(npy_write_f32(d / "n.npy", &x, {-1}), "negative");
}

TEST(Npy, Fixtures) {
  const NpyArray tokens = npy_read(test::fixture("models/tiny-v3/tokens.npy"));
  EXPECT_EQ(tokens.descr, "<i8");
  EXPECT_EQ(tokens.shape, std::vector<int64_t>{48});
  const auto ids = tokens.to_i64();
  ASSERT_EQ(ids.size(), 48u);
  for (int64_t id : ids) EXPECT_GE(id, 0);
  const NpyArray logits = npy_read(test::fixture("models/tiny-v3/logits.npy"));
  EXPECT_EQ(logits.descr, "<f4");
  EXPECT_EQ(logits.shape, (std::vector<int64_t>{48, 1024}));
  const auto f = logits.to_f32();
  ASSERT_EQ(f.size(), 48u * 1024u);
  for (float v : f) ASSERT_TRUE(v == v);  // no NaN
}

TEST(Npy, Versions2And3AndOtherDtypes) {
  TempDir d;
  const std::vector<double> dv = {0.5, -1.25};
  test::write_file(d / "v2.npy",
                   npy_image(2, "{'descr': '<f8', 'fortran_order': False, 'shape': (2,), }", bytes_of(dv)));
  EXPECT_EQ(npy_read(d / "v2.npy").to_f32(), (std::vector<float>{0.5f, -1.25f}));
  const std::vector<int32_t> iv = {3, -4, 5, 6};
  test::write_file(d / "v3.npy",
                   npy_image(3, "{\"descr\":\"<i4\",\"fortran_order\":False,\"shape\":(2,2)}", bytes_of(iv)));
  EXPECT_EQ(npy_read(d / "v3.npy").to_i64(), (std::vector<int64_t>{3, -4, 5, 6}));
  test::write_file(d / "u1.npy", npy_image(1, "{'descr': '|u1', 'fortran_order': False, 'shape': (3,), }", {1, 2, 3}));
  const NpyArray u = npy_read(d / "u1.npy");
  EXPECT_EQ(u.data, (std::vector<uint8_t>{1, 2, 3}));
  EXPECT_DS_ERROR(u.to_i64(), "|u1");
  EXPECT_DS_ERROR(u.to_f32(), "|u1");
  test::write_file(d / "u2.npy", npy_image(1, "{'shape': (1,), 'fortran_order': False, 'descr': '<u2'}", {1, 2}));
  EXPECT_EQ(npy_read(d / "u2.npy").data.size(), 2u);
}

TEST(Npy, EveryTruncationFails) {
  TempDir d;
  const std::vector<float> v = {1, 2, 3};
  npy_write_f32(d / "full.npy", v.data(), {3});
  const auto raw = read_all(d / "full.npy");
  for (size_t n = 0; n < raw.size(); ++n) {
    test::write_file(d / "cut.npy", std::vector<uint8_t>(raw.begin(), raw.begin() + long(n)));
    EXPECT_THROW(npy_read(d / "cut.npy"), ds::Error) << "length " << n;
  }
  std::vector<uint8_t> longer = raw;
  longer.push_back(0);
  test::write_file(d / "long.npy", longer);
  EXPECT_DS_ERROR(npy_read(d / "long.npy"), "long.npy", "needs 12 data bytes", "has 13");
}

TEST(Npy, MalformedHeaders) {
  TempDir d;
  const std::vector<uint8_t> four(4, 0);
  const std::vector<std::pair<std::string, std::string>> bad_dicts = {
      {"{'descr': '<f4', 'fortran_order': True, 'shape': (1,), }", "fortran_order"},
      {"{'descr': '>f4', 'fortran_order': False, 'shape': (1,), }", "'>f4'"},
      {"{'descr': '<c8', 'fortran_order': False, 'shape': (1,), }", "'<c8'"},
      {"{'descr': '<f4', 'fortran_order': False, }", "must have"},
      {"{'descr': '<f4', 'fortran_order': False, 'shape': (1,), 'extra': 1}", "unknown key 'extra'"},
      {"{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': (1,)}", "repeats 'descr'"},
      {"{'descr': '<f4', 'fortran_order': False, 'shape': (1), }", "malformed"},
      {"{'descr': '<f4', 'fortran_order': False, 'shape': (-1,), }", "malformed"},
      {"{'descr': '<f4', 'fortran_order': False, 'shape': [1], }", "malformed"},
      {"{'descr': '<f4', 'fortran_order': 0, 'shape': (1,), }", "True or False"},
      {"{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999999999999,), }", "too large"},
      {"{'descr': '<f4', 'fortran_order': False, 'shape': (4294967296, 4294967296, 16), }", "overflow"},
      {"{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }", "needs 8 data bytes"},
      {"{'descr': '<f4', 'fortran_order': False, 'shape': (1,), } x", "trailing"},
      {"{'descr: '<f4', 'fortran_order': False, 'shape': (1,)}", "malformed"},
      {"garbage", "malformed"},
      {"", "malformed"},
  };
  for (const auto& [dict, why] : bad_dicts) {
    SCOPED_TRACE(dict);
    test::write_file(d / "bad.npy", npy_image(1, dict, four));
    EXPECT_DS_ERROR(npy_read(d / "bad.npy"), "bad.npy", why);
  }
  auto img = npy_image(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (1,), }", four);
  img[0] = 'X';
  test::write_file(d / "magic.npy", img);
  EXPECT_DS_ERROR(npy_read(d / "magic.npy"), "bad magic");
  img[0] = 0x93;
  img[6] = 4;
  test::write_file(d / "ver.npy", img);
  EXPECT_DS_ERROR(npy_read(d / "ver.npy"), "version 4.0");
  img[6] = 1;
  img[8] = 0xff;
  img[9] = 0xff;
  test::write_file(d / "hlen.npy", img);
  EXPECT_DS_ERROR(npy_read(d / "hlen.npy"), "truncated npy header");
  auto v2 = npy_image(2, "{'descr': '<f4', 'fortran_order': False, 'shape': (1,), }", four);
  v2[11] = 0x7f;
  test::write_file(d / "hlen2.npy", v2);
  EXPECT_DS_ERROR(npy_read(d / "hlen2.npy"), "exceeds the limit");
  EXPECT_DS_ERROR(npy_read(d / "missing.npy"), "missing.npy", "No such file");
}

}  // namespace
}  // namespace ds::io
