// SPDX-License-Identifier: MIT
// Randomised hostile input for the tokenizer, checked for correctness (not time), so that the ASan/UBSan pass runs
// it: random bytes (invalid UTF-8 included), random mixes of special-token text, partial special tokens, CJK, emoji,
// digits and whitespace runs, and a special-token flood. Properties, for every input s:
//  - decode(encode(s, parse_special)) == the UTF-8-repaired s, with and without special-token parsing;
//  - without parsing, no added (control) token appears; with parsing, the added tokens are exactly the complete
//    special-token texts in s;
//  - the streaming decoder fed one id at a time gives the same text, every delta valid UTF-8.
#include <random>

#include "tokenizer/stream_decoder.h"
#include "tokenizer/tok_test_util.h"
#include "tokenizer/unicode.h"

namespace ds::tok::test {
namespace {

void check_round_trip(const Tokenizer& tok, const std::string& s, const std::string& what) {
  const std::string want = utf8_sanitize(s);
  for (bool parse : {true, false}) {
    const auto ids = tok.encode(s, parse);
    ASSERT_EQ(tok.decode(ids), want) << what << " parse_special=" << parse;
    if (!parse)
      for (int32_t id : ids) ASSERT_FALSE(tok.is_added(id)) << what << ": control token " << id << " from plain text";
    StreamDecoder sd(tok);
    std::string streamed;
    for (int32_t id : ids) {
      const std::string d = sd.push(id);
      ASSERT_EQ(utf8_sanitize(d), d) << what << ": a streamed delta is not valid UTF-8";
      streamed += d;
    }
    streamed += sd.flush();
    ASSERT_EQ(streamed, want) << what << " (streamed) parse_special=" << parse;
  }
}

TEST(TokenizerFuzz, RandomBytes) {
  const Tokenizer& tok = v3();
  std::mt19937 rng(3);
  for (int trial = 0; trial < 400; ++trial) {
    std::string junk(1 + rng() % 300, '\0');
    for (char& c : junk) c = static_cast<char>(rng());
    check_round_trip(tok, junk, "random bytes #" + std::to_string(trial));
  }
}

TEST(TokenizerFuzz, RandomMixesOfSpecialsAndText) {
  const Tokenizer& tok = v3();
  std::vector<std::string> specials;
  for (const char* sp : {"<｜begin▁of▁sentence｜>", "<｜end▁of▁sentence｜>", "<｜User｜>", "<｜Assistant｜>",
                         "<｜tool▁calls▁begin｜>", "<｜tool▁sep｜>", "<｜fim▁hole｜>"})
    if (tok.is_added(tok.token_to_id(sp))) specials.push_back(sp);
  ASSERT_EQ(specials.size(), 7u) << "the V3 tokenizer's added tokens";
  const std::vector<std::string> pieces = {"a", " ", "  ", "\n", "\n\n", "\t", "0", "12345", "日本語", "😀", "é",
                                           "<", "｜", "▁", "<｜", "｜>", "User", "'s", " don't", "<think>", "</think>", "\r\n", "\xff",
                                           "\xe6\x97", "\xf0\x9f", "\x80", "ﬁ", "Ω", "a\u0301"};
  std::mt19937 rng(11);
  for (int trial = 0; trial < 600; ++trial) {
    std::string s;
    size_t n_special = 0;
    const int parts = 1 + int(rng() % 24);
    for (int i = 0; i < parts; ++i) {
      const unsigned r = rng() % 10;
      if (r < 3) {
        s += specials[rng() % specials.size()];
        ++n_special;
      } else if (r < 4) {
        const std::string& sp = specials[rng() % specials.size()];
        s += sp.substr(0, 1 + rng() % (sp.size() - 1));  // a cut-off special token (may split a character)
      } else {
        s += pieces[rng() % pieces.size()];
      }
    }
    check_round_trip(tok, s, "mix #" + std::to_string(trial));
    // With parsing on, the number of added tokens is at least the number of whole special texts we put in
    // (a cut-off one may complete with what follows, never the reverse).
    const auto ids = tok.encode(s, true);
    size_t added = 0;
    for (int32_t id : ids) added += tok.is_added(id);
    EXPECT_GE(added, n_special) << "mix #" << trial;
  }
}

TEST(TokenizerFuzz, SpecialTokenFlood) {
  const Tokenizer& tok = v3();
  std::string s;
  while (s.size() < (256u << 10)) s += "<｜end▁of▁sentence｜><｜User｜<｜";
  const auto ids = tok.encode(s, true);
  EXPECT_EQ(tok.decode(ids), s);
  size_t eos = 0;
  for (int32_t id : ids) eos += id == tok.eos_id();
  EXPECT_EQ(eos, s.size() / std::string("<｜end▁of▁sentence｜><｜User｜<｜").size());
  const auto plain = tok.encode(s, false);
  for (int32_t id : plain) ASSERT_FALSE(tok.is_added(id));
  EXPECT_EQ(tok.decode(plain), s);
}

}  // namespace
}  // namespace ds::tok::test
