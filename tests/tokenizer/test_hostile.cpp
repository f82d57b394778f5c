// SPDX-License-Identifier: MIT
// Hostile input at size, with time limits: 1-10 MiB of one character, mixed text with invalid bytes, unspaced CJK,
// special-token floods, decomposed text (NFC). For DeepSeek-V3's tokenizer and the distills' (Qwen3 with its NFC
// normalizer, Llama 3.1), under the same limits. Labelled `slow` (timing is meaningless under ASan); the correctness
// of the same kinds of input, at sizes the sanitizer build can afford, is checked by test_fuzz.cpp and
// test_models.cpp, which the sanitizer pass runs.
#include <chrono>
#include <cstdio>
#include <random>

#include "tokenizer/normalizer.h"
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

class Hostile : public ::testing::TestWithParam<const char*> {
 protected:
  const Tokenizer& tok() const { return std::string(GetParam()) == "deepseek-v3" ? v3() : model_tok(GetParam()); }
  bool nfc_model() const { return std::string(GetParam()) == "qwen3"; }
};

TEST_P(Hostile, OneMiBOfOneCharacterIsFast) {
  const Tokenizer& tok = this->tok();
  for (const char* unit : {"a", " ", "\n", "_", "0", "日", "😀", "<", "e\u0301", "\u0301"}) {
    std::string s;
    while (s.size() < (1u << 20)) s += unit;
    std::vector<int32_t> ids;
    const double dt = seconds_to_encode(tok, s, &ids);
    std::printf("1 MiB of '%s': %.3f s, %zu tokens\n", unit, dt, ids.size());
    EXPECT_LE(dt, 2.0) << "1 MiB of '" << unit << "' took " << dt << " s";
    EXPECT_EQ(tok.decode(ids), nfc_model() ? nfc(s) : s) << unit;
  }
}

TEST_P(Hostile, TenMiBMixedAndInvalid) {
  const Tokenizer& tok = this->tok();
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
  EXPECT_EQ(tok.decode(ids), nfc_model() ? nfc(utf8_sanitize(s)) : utf8_sanitize(s));
}

TEST_P(Hostile, UnspacedCjkIsFast) {
  const Tokenizer& tok = this->tok();
  std::string cjk;
  std::mt19937 rng(3);
  while (cjk.size() < (1u << 20)) append_utf8(cjk, 0x4E00 + rng() % (0x9FA5 - 0x4E00));
  std::vector<int32_t> ids;
  EXPECT_LE(seconds_to_encode(tok, cjk, &ids), 2.0);
  EXPECT_EQ(tok.decode(ids), cjk);
}

TEST_P(Hostile, SpecialTokenFloodIsFast) {
  const Tokenizer& tok = this->tok();
  // Two of the tokenizer's added tokens and a truncated one.
  const auto& added = tok.added_tokens().tokens();
  const std::string a = added.front().content, b = added[1].content;
  std::string s;
  while (s.size() < (1u << 20)) s += a + b.substr(0, b.size() - 1) + a.substr(0, 2);
  EXPECT_LE(seconds_to_encode(tok, s), 2.0);
}

INSTANTIATE_TEST_SUITE_P(Tokenizers, Hostile, ::testing::Values("deepseek-v3", "qwen3", "llama3_1"),
                         [](const auto& info) {
                           std::string s = info.param;
                           for (char& c : s)
                             if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
                           return s;
                         });

}  // namespace
}  // namespace ds::tok::test
