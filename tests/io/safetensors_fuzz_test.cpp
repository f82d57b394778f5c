// SPDX-License-Identifier: MIT
// Systematic corruption of small valid safetensors images: every truncation must fail cleanly; every single-bit
// flip in the length prefix and header must either fail with ds::Error or load a self-consistent file.
#include <gtest/gtest.h>

#include <fstream>
#include <iterator>

#include "io/safetensors.h"
#include "io_test_util.h"

namespace ds::io {
namespace {

using test::entry;

std::vector<uint8_t> small_valid() {
  const std::string h = "{\"__metadata__\":{\"format\":\"pt\"}," + entry("w", "BF16", "[2,3]", "[0,12]") + "," +
                        entry("b", "F32", "[3]", "[12,24]") + "," + entry("s", "I64", "[]", "[24,32]") + "," +
                        entry("e", "U8", "[0]", "[32,32]") + "}  ";
  return test::st_image(h, 32);
}

// Every invariant a caller relies on after a successful parse.
void check_consistent(const SafetensorsFile& st, const std::vector<uint8_t>& img) {
  const uint8_t* lo = img.data();
  const uint8_t* hi = img.data() + img.size();
  for (const TensorInfo& t : st.tensors()) {
    ASSERT_LE(t.begin, t.end);
    ASSERT_GE(t.data, lo);
    ASSERT_LE(t.data + t.nbytes(), hi);
    ASSERT_EQ(uint64_t(t.numel()) * uint64_t(dtype_size(t.dtype)), t.nbytes());
    ASSERT_EQ(st.find(t.name), &t);
  }
}

TEST(SafetensorsFuzz, SmallValidImageLoads) {
  const auto img = small_valid();
  auto st = SafetensorsFile::parse(img.data(), img.size(), "v");
  EXPECT_EQ(st->tensors().size(), 4u);
  check_consistent(*st, img);
}

TEST(SafetensorsFuzz, EveryTruncationFails) {
  const auto img = small_valid();
  for (size_t n = 0; n < img.size(); ++n) {
    const std::vector<uint8_t> cut(img.begin(), img.begin() + long(n));  // exact-size copy: ASan sees overreads
    EXPECT_THROW(SafetensorsFile::parse(cut.data(), cut.size(), "cut"), ds::Error) << "length " << n;
  }
}

TEST(SafetensorsFuzz, EveryHeaderBitFlipIsHandled) {
  const auto img = small_valid();
  size_t n = 0;
  for (int i = 0; i < 8; ++i) n |= size_t(img[size_t(i)]) << (8 * i);
  size_t errors = 0, loads = 0;
  for (size_t byte = 0; byte < 8 + n; ++byte) {
    for (int bit = 0; bit < 8; ++bit) {
      std::vector<uint8_t> m = img;
      m[byte] ^= uint8_t(1u << bit);
      try {
        auto st = SafetensorsFile::parse(m.data(), m.size(), "flip");
        check_consistent(*st, m);
        ++loads;
      } catch (const ds::Error&) { ++errors; }
    }
  }
  EXPECT_GT(errors, 0u);
  EXPECT_GT(loads, 0u);  // e.g. flips inside metadata values or names keep the file valid
}

TEST(SafetensorsFuzz, FixtureHeaderTruncationsFail) {
  // The real tiny-v3 header, cut at a spread of offsets through the header and data.
  std::ifstream f(test::fixture("models/tiny-v3/model.safetensors"), std::ios::binary);
  const std::vector<uint8_t> img((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  ASSERT_GT(img.size(), 1000u);
  for (size_t n = 0; n < img.size(); n += (n < 30000 ? 97 : 100003)) {
    const std::vector<uint8_t> cut(img.begin(), img.begin() + long(n));
    EXPECT_THROW(SafetensorsFile::parse(cut.data(), cut.size(), "cut"), ds::Error) << "length " << n;
  }
  EXPECT_NO_THROW(SafetensorsFile::parse(img.data(), img.size(), "full"));
}

}  // namespace
}  // namespace ds::io
