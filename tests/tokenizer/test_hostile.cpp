// SPDX-License-Identifier: MIT
// Hostile input at size, with time limits: 1-10 MiB of one character, mixed text with invalid bytes, unspaced CJK,
// special-token floods. Labelled `slow` (timing is meaningless under ASan); the correctness of the same kinds of
// input, at sizes the sanitizer build can afford, is checked by test_fuzz.cpp, which the sanitizer pass runs.
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

TEST(Hostile, UnspacedCjkIsFast) {
  const Tokenizer& tok = v3();
  std::string cjk;
  std::mt19937 rng(3);
  while (cjk.size() < (1u << 20)) append_utf8(cjk, 0x4E00 + rng() % (0x9FA5 - 0x4E00));
  std::vector<int32_t> ids;
  EXPECT_LE(seconds_to_encode(tok, cjk, &ids), 2.0);
  EXPECT_EQ(tok.decode(ids), cjk);
}

TEST(Hostile, SpecialTokenFloodIsFast) {
  const Tokenizer& tok = v3();
  std::string s;
  while (s.size() < (1u << 20)) s += "<｜end▁of▁sentence｜><｜User｜<｜";
  EXPECT_LE(seconds_to_encode(tok, s), 2.0);
}

}  // namespace
}  // namespace ds::tok::test
