// SPDX-License-Identifier: MIT
// Encode/decode against Hugging Face `tokenizers` goldens (encode.jsonl: 419 strings) and basic properties.
#include <chrono>

#include "base/error.h"
#include "tokenizer/pretokenizer.h"
#include "tokenizer/unicode.h"
#include "tokenizer/tok_test_util.h"

namespace ds::tok::test {
namespace {

TEST(Encode, GoldenIdsAndDecode) {
  const Tokenizer& tok = v3();
  const auto rows = read_jsonl(fixture("encode.jsonl"));
  ASSERT_EQ(rows.size(), 419u);
  size_t ok_ids = 0, ok_dec = 0;
  for (const auto& r : rows) {
    const std::string text = r.at("text").get<std::string>();
    const auto want = r.at("ids").get<std::vector<int32_t>>();
    const auto got = tok.encode(text, true);
    if (got == want) ++ok_ids;
    else ADD_FAILURE() << "ids differ for " << nlohmann::json(text).dump();
    const std::string dec = tok.decode(want);
    if (dec == r.at("decoded").get<std::string>() && dec == text) ++ok_dec;
    else ADD_FAILURE() << "decode differs for " << nlohmann::json(text).dump();
  }
  EXPECT_EQ(ok_ids, rows.size());
  EXPECT_EQ(ok_dec, rows.size());
}

TEST(Encode, SanityVectors) {
  const Tokenizer& tok = v3();
  EXPECT_EQ(tok.encode("Hello!", true), (std::vector<int32_t>{19923, 3}));
  EXPECT_EQ(tok.bos_id(), 0);
  EXPECT_EQ(tok.eos_id(), 1);
  EXPECT_TRUE(tok.add_bos());
  EXPECT_EQ(tok.vocab_size(), 128815u);
  EXPECT_EQ(tok.token_to_id("<｜User｜>"), 128803);
  EXPECT_EQ(tok.token_to_id("Hello"), 19923);
  EXPECT_EQ(tok.token_to_piece(19923), "Hello");
}

TEST(Encode, SpecialParsingOnOff) {
  const Tokenizer& tok = v3();
  const std::string s = "a<｜end▁of▁sentence｜>b<｜User｜>";
  const auto on = tok.encode(s, true);
  EXPECT_EQ(std::count(on.begin(), on.end(), 1), 1);
  EXPECT_EQ(std::count(on.begin(), on.end(), 128803), 1);
  const auto off = tok.encode(s, false);
  for (int32_t id : off) EXPECT_FALSE(tok.is_added(id)) << id;
  EXPECT_EQ(tok.decode(off), s);
  // Every added token: parsed as itself when on, never produced when off, and round-trips.
  for (const auto& a : tok.added_tokens().tokens()) {
    EXPECT_EQ(tok.encode(a.content, true), std::vector<int32_t>{a.id}) << a.content;
    const auto plain = tok.encode(a.content, false);
    for (int32_t id : plain) ASSERT_FALSE(tok.is_added(id)) << a.content;
    EXPECT_EQ(tok.decode(plain), a.content);
  }
}

TEST(Encode, InvalidUtf8IsRepaired) {
  const Tokenizer& tok = v3();
  const std::string bad = std::string("ok\xff\xfe", 4) + "\xe4\xb8" + "end\xc0\xaf" + "\xed\xa0\x80";
  const auto ids = tok.encode(bad, true);
  EXPECT_EQ(tok.decode(ids), utf8_sanitize(bad));
  EXPECT_EQ(tok.encode(bad, true), tok.encode(utf8_sanitize(bad), true));
  EXPECT_TRUE(utf8_is_valid(tok.decode(ids)));
}

TEST(Encode, DecodeSkipsUnknownIdsAndRepairsPartialBytes) {
  const Tokenizer& tok = v3();
  const auto ids = tok.encode("日本", false);
  std::vector<int32_t> bad = {-5, 129000, 1 << 30};
  EXPECT_EQ(tok.decode(bad), "");
  // A lone byte token that is the first byte of a multibyte char decodes to U+FFFD.
  const int32_t lead = tok.token_to_id("æ");  // ByteLevel text of byte 0xE6
  ASSERT_GE(lead, 0);
  EXPECT_EQ(tok.decode({lead}), "\xEF\xBF\xBD");
  EXPECT_EQ(tok.decode(ids), "日本");
}

// A tokenizer.json regex that matches at every position only after ~2^20 backtracking steps (each match call stays
// under PCRE2's match limit): unbounded, splitting these 40 KB took about 12 s on the development machine (6 ms per
// match; each further `a?` doubles it); the split's time budget fails it at about kBudgetSeconds + 10 us per byte
// instead, naming the rule. The same text through DeepSeek-V3's
// pre-tokenizer stays far inside the budget.
TEST(PreTokenizerBudget, BacktrackingRegexFailsInsteadOfHanging) {
  std::string text;
  while (text.size() < 40000) text += std::string(20, 'a') + "b";
  const nlohmann::json spec = {{"type", "Split"},
                               {"pattern", {{"Regex", "(?:a?){20}a{20}(?=b)"}}},
                               {"behavior", "Isolated"}};
  PreTokenizer pre(spec);
  std::vector<Span> pieces;
  const auto t0 = std::chrono::steady_clock::now();
  try {
    pre.split(text, pieces);
    ADD_FAILURE() << "the backtracking regex was not stopped";
  } catch (const ds::Error& e) {
    EXPECT_NE(std::string(e.what()).find("pre-tokenizer rule 0 took over"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("(?:a?){20}"), std::string::npos) << e.what();
  }
  const double dt = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const double budget = PreTokenizer::kBudgetSeconds + PreTokenizer::kBudgetSecondsPerByte * text.size();
  EXPECT_LT(dt, budget + 2.0) << "stopped after " << dt << " s";

  // The first few matches are real: the pattern itself works (it is slow, not wrong).
  PreTokenizer fine(spec);
  std::vector<Span> few;
  fine.split(std::string(20, 'a') + "b" + std::string(20, 'a') + "b", few);
  ASSERT_EQ(few.size(), 4u);
  EXPECT_EQ(few[0].len, 20u);
  EXPECT_EQ(few[1].len, 1u);

  const auto ids = v3().encode(text, false);  // DeepSeek's own regexes: no false alarm
  EXPECT_EQ(v3().decode(ids), text);
}

}  // namespace
}  // namespace ds::tok::test
