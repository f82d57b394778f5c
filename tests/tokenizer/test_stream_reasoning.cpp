// SPDX-License-Identifier: MIT
// Streaming detokenizer over the corpus and UTF-8 edge cases; reasoning split by token id and by text.
#include <fstream>

#include "tokenizer/reasoning.h"
#include "tokenizer/stream_decoder.h"
#include "tokenizer/tok_test_util.h"
#include "tokenizer/unicode.h"

namespace ds::tok::test {
namespace {

std::string stream_all(const Tokenizer& tok, const std::vector<int32_t>& ids) {
  StreamDecoder sd(tok);
  std::string all;
  for (int32_t id : ids) {
    const std::string d = sd.push(id);
    EXPECT_TRUE(utf8_is_valid(d));
    all += d;
  }
  const std::string f = sd.flush();
  EXPECT_TRUE(utf8_is_valid(f));
  return all + f;
}

TEST(StreamDecoder, CorpusDeltasConcatenateToFullDecode) {
  const Tokenizer& tok = v3();
  size_t n = 0;
  for (const auto& r : read_jsonl(fixture("encode.jsonl"))) {
    const auto ids = r.at("ids").get<std::vector<int32_t>>();
    EXPECT_EQ(stream_all(tok, ids), tok.decode(ids)) << r.at("text").dump();
    ++n;
  }
  EXPECT_EQ(n, 419u);
}

TEST(StreamDecoder, SplitCharactersAndInvalidBytes) {
  const Tokenizer& tok = v3();
  // Single byte tokens: every byte value on its own and in random-ish sequences, including invalid UTF-8.
  std::vector<int32_t> byte_ids(256);
  for (int b = 0; b < 256; ++b) {
    std::string s;
    append_utf8(s, byte_to_codepoint()[b]);
    byte_ids[b] = tok.token_to_id(s);
    ASSERT_GE(byte_ids[b], 0) << b;
  }
  uint32_t x = 12345;
  for (int trial = 0; trial < 3000; ++trial) {
    std::vector<int32_t> ids;
    const int len = 1 + trial % 9;
    for (int k = 0; k < len; ++k) {
      x = x * 1103515245 + 12345;
      // Bias towards UTF-8 structure bytes so that partial and broken sequences are common.
      static const uint8_t interesting[] = {0xE4, 0xB8, 0xAD, 0xF0, 0x9F, 0x98, 0x80, 0xC3, 0xA9, 0xED, 0xA0, 0xC0, 0xFF, 'a'};
      const uint8_t b = (x >> 8) % 3 ? interesting[(x >> 16) % sizeof(interesting)] : static_cast<uint8_t>(x >> 20);
      ids.push_back(byte_ids[b]);
    }
    EXPECT_EQ(stream_all(tok, ids), tok.decode(ids));
  }
  // Two-byte exhaustive sweep.
  for (int a = 0x80; a < 256; ++a)
    for (int b = 0; b < 256; b += 3) EXPECT_EQ(stream_all(tok, {byte_ids[a], byte_ids[b]}), tok.decode({byte_ids[a], byte_ids[b]}));
  // A 4-byte emoji fed byte by byte yields nothing until it completes.
  StreamDecoder sd(tok);
  const std::string emoji = "\xF0\x9F\x98\x80";
  for (int k = 0; k < 3; ++k) EXPECT_EQ(sd.push(byte_ids[static_cast<uint8_t>(emoji[k])]), "");
  EXPECT_EQ(sd.push(byte_ids[0x80]), emoji);
  EXPECT_EQ(sd.push(byte_ids[0xE4]), "");
  EXPECT_EQ(sd.flush(), "\xEF\xBF\xBD");
  EXPECT_EQ(sd.push(-1), "");
  EXPECT_EQ(sd.push(1 << 30), "");
}

// A copy of the V3 tokenizer whose placeholder tokens 128798/128799 are renamed <think>/</think>, exactly as the
// R1 and V3.1 vocabularies define them.
const Tokenizer& r1_like() {
  static const Tokenizer* t = [] {
    auto tj = nlohmann::json::parse(read_file(tokenizer_dir() + "/tokenizer.json"));
    for (auto& a : tj["added_tokens"]) {
      if (a["id"] == 128798) a["content"] = "<think>";
      if (a["id"] == 128799) a["content"] = "</think>";
    }
    auto cfg = nlohmann::json::parse(read_file(tokenizer_dir() + "/tokenizer_config.json"));
    return new Tokenizer(tj, cfg);
  }();
  return *t;
}

ReasoningDelta stream_parse(ReasoningParser& p, const std::vector<int32_t>& ids) {
  ReasoningDelta all;
  for (int32_t id : ids) {
    auto d = p.push(id);
    all.reasoning += d.reasoning;
    all.content += d.content;
  }
  auto d = p.flush();
  all.reasoning += d.reasoning;
  all.content += d.content;
  return all;
}

TEST(Reasoning, ByTokenIdR1PromptEndsWithThink) {
  const Tokenizer& tok = r1_like();
  EXPECT_EQ(tok.encode("<think>\n</think>", true), (std::vector<int32_t>{128798, 201, 128799}));
  EXPECT_TRUE(prompt_opens_reasoning("<｜Assistant｜><think>\n"));
  EXPECT_FALSE(prompt_opens_reasoning("<｜Assistant｜></think>"));
  const auto ids = tok.encode("Let me think: 2+2.\n</think>\n\nThe answer is 4.", true);
  ReasoningParser p(tok, true);
  ASSERT_TRUE(p.by_token_id());
  const auto r = stream_parse(p, ids);
  EXPECT_EQ(r.reasoning, "Let me think: 2+2.\n");
  EXPECT_EQ(r.content, "\n\nThe answer is 4.");
  // The same text spelled with ordinary tokens (special parsing off) cannot close the reasoning.
  ReasoningParser q(tok, true);
  const auto spoof = q.parse(tok.encode("a</think>b", false));
  EXPECT_EQ(spoof.reasoning, "a</think>b");
  EXPECT_EQ(spoof.content, "");
}

TEST(Reasoning, ByTokenIdOpenTagInOutputAndNoReasoning) {
  const Tokenizer& tok = r1_like();
  ReasoningParser p(tok, false);
  const auto r = p.parse(tok.encode("<think>\nhmm\n</think>\n\nok", true));
  EXPECT_EQ(r.reasoning, "\nhmm\n");
  EXPECT_EQ(r.content, "\n\nok");
  ReasoningParser v31_nothink(tok, false);  // prompt ended with </think>
  const auto c = v31_nothink.parse(tok.encode("Just the answer </think> here", true));
  EXPECT_EQ(c.reasoning, "");
  EXPECT_EQ(c.content, "Just the answer </think> here");
}

TEST(Reasoning, TextFallbackStreaming) {
  const Tokenizer& tok = v3();  // the V3 vocabulary has no <think> token
  const std::string out = "Thinking \xE6\x97\xA5 step </thi";
  ReasoningParser p(tok, true);
  ASSERT_FALSE(p.by_token_id());
  const auto r = p.parse(tok.encode(out + "nk>\n\nAnswer 日本", true));
  EXPECT_EQ(r.reasoning, "Thinking 日 step ");
  EXPECT_EQ(r.content, "\n\nAnswer 日本");
  ReasoningParser q(tok, false);
  const auto s = q.parse(tok.encode("  <think>abc</think>def", true));
  EXPECT_EQ(s.reasoning, "abc");
  EXPECT_EQ(s.content, "def");
  ReasoningParser u(tok, true);  // unterminated: everything is reasoning, a dangling partial tag is kept
  const auto t = u.parse(tok.encode("still thinking </th", true));
  EXPECT_EQ(t.reasoning, "still thinking </th");
}

}  // namespace
}  // namespace ds::tok::test
