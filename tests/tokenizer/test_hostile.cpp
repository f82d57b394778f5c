// SPDX-License-Identifier: MIT
// Hostile input: invalid UTF-8, huge inputs, long runs of one character, unspaced CJK, special-token text.
// Labelled `slow` in CMake where timing matters (skipped under ASan); correctness parts also run in test_encode.
#include <chrono>
#include <cstdio>
#include <random>

#include "tokenizer/stream_decoder.h"
#include "tokenizer/tok_test_util.h"
#include "tokenizer/unicode.h"

namespace ds::tok::test {
namespace {

double seconds_to_encode(const Tokenizer& tok, const std::string& s, std::vector<int32_t>* ids = nullptr) {
  const auto t0 = std::chrono::steady_clock::now();
  auto out = tok.encode(s, true);
  const double dt = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  if (ids) *ids = std::move(out);
  return dt;
}

TEST(Hostile, OneMiBOfOneCharacterIsFast) {
  const Tokenizer& tok = v3();
  for (const char* unit : {"a", " ", "\n", "_", "0", "日", "😀", "<"}) {
    std::string s;
    while (s.size() < (1u << 20)) s += unit;
    std::vector<int32_t> ids;
    const double dt = seconds_to_encode(tok, s, &ids);
    std::printf("1 MiB of '%s': %.3f s, %zu tokens\n", unit, dt, ids.size());
    EXPECT_LE(dt, 2.0) << "1 MiB of '" << unit << "' took " << dt << " s";
    EXPECT_EQ(tok.decode(ids), s) << unit;
  }
}

TEST(Hostile, TenMiBMixedAndInvalid) {
  const Tokenizer& tok = v3();
  std::mt19937 rng(7);
  std::string s;
  s.reserve(10u << 20);
  const auto rows = read_jsonl(fixture("encode.jsonl"));
  while (s.size() < (10u << 20)) {
    s += rows[rng() % rows.size()].at("text").get<std::string>();
    if (rng() % 16 == 0) s.push_back(static_cast<char>(0x80 + rng() % 128));  // stray invalid bytes
  }
  std::vector<int32_t> ids;
  const double dt = seconds_to_encode(tok, s, &ids);
  EXPECT_LE(dt, 20.0);
  EXPECT_EQ(tok.decode(ids), utf8_sanitize(s));
}

TEST(Hostile, UnspacedCjkAndRandomBytes) {
  const Tokenizer& tok = v3();
  std::string cjk;
  std::mt19937 rng(3);
  while (cjk.size() < (1u << 20)) append_utf8(cjk, 0x4E00 + rng() % (0x9FA5 - 0x4E00));
  std::vector<int32_t> ids;
  EXPECT_LE(seconds_to_encode(tok, cjk, &ids), 2.0);
  EXPECT_EQ(tok.decode(ids), cjk);
  for (int trial = 0; trial < 200; ++trial) {
    std::string junk(1 + rng() % 300, '\0');
    for (char& c : junk) c = static_cast<char>(rng());
    const auto a = tok.encode(junk, true);
    const auto b = tok.encode(junk, false);
    EXPECT_EQ(tok.decode(a), utf8_sanitize(junk));
    EXPECT_EQ(tok.decode(b), utf8_sanitize(junk));
  }
}

TEST(Hostile, SpecialTokenFlood) {
  const Tokenizer& tok = v3();
  std::string s;
  while (s.size() < (1u << 20)) s += "<｜end▁of▁sentence｜><｜User｜<｜";
  std::vector<int32_t> ids;
  EXPECT_LE(seconds_to_encode(tok, s, &ids), 2.0);
  EXPECT_EQ(tok.decode(ids), s);
  const auto plain = tok.encode(s, false);
  for (int32_t id : plain) ASSERT_FALSE(tok.is_added(id));
  EXPECT_EQ(tok.decode(plain), s);
}

}  // namespace
}  // namespace ds::tok::test
