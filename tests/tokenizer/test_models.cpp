// SPDX-License-Identifier: MIT
// The tokenizers of DeepSeek's distilled models (tests/fixtures/tokenizer/<name>/, see the README there):
//  - qwen3 (the Qwen2/2.5/3 byte-level BPE with its NFC normalizer: R1-Distill-Qwen, R1-0528-Qwen3), llama3_1
//    (Llama 3: ignore_merges, BOS from the post-processor: R1-Distill-Llama), and the R1-Distill variants of both
//    (DeepSeek's added tokens and BOS): ids byte-exact with Hugging Face `tokenizers` on 450 strings, decode, BOS,
//    added tokens parsed only when asked, random round trips (streamed too);
//  - llama.cpp's tokenizer tests (ggml-vocab-{qwen2,llama-bpe,qwen35}.gguf.inp/.out, made by llama.cpp's generator
//    with transformers): through tokenizer.json and through the GGUF llama.cpp's converter makes of it (written here
//    as tests/tokenizer/gguf_vocab_writer.h does), for the pre-tokenizer names qwen2, deepseek-r1-qwen, qwen35 and
//    llama-bpe; with DS_LLAMACPP_VOCAB_DIR set, also through llama.cpp's own vocabulary files in that folder.
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <random>

#include "base/error.h"
#include "io/gguf.h"
#include "tokenizer/chat_template.h"
#include "tokenizer/gguf_vocab.h"
#include "tokenizer/gguf_vocab_writer.h"
#include "tokenizer/normalizer.h"
#include "tokenizer/reasoning.h"
#include "tokenizer/stream_decoder.h"
#include "tokenizer/tok_test_util.h"
#include "tokenizer/unicode.h"

namespace ds::tok::test {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

bool normalizes_nfc(const std::string& name) { return !model_files(name).tokenizer.at("normalizer").is_null(); }

// What the tokenizer's decode(encode(s)) must give: s repaired, and with an NFC normalizer each piece between the
// (raw) added tokens normalized, as HF does.
std::string expected_round_trip(const Tokenizer& tok, bool nfc_model, const std::string& s, bool parse_special) {
  const std::string clean = utf8_sanitize(s);
  if (!nfc_model) return clean;
  if (!parse_special) return nfc(clean);
  std::vector<Segment> segs;
  tok.added_tokens().split_raw(clean, segs);
  std::string out;
  for (const Segment& g : segs) {
    const std::string piece = clean.substr(g.begin, g.len);
    out += g.id >= 0 ? piece : nfc(piece);
  }
  return out;
}

class ModelGoldens : public ::testing::TestWithParam<const char*> {};

TEST_P(ModelGoldens, HuggingFaceIdsAndDecode) {
  const std::string name = GetParam();
  const Tokenizer& tok = model_tok(name);
  const json meta = json::parse(read_file(fixture(name + "/meta.json")));
  const auto rows = read_jsonl(fixture(name + "/encode.jsonl"));
  ASSERT_EQ(meta.at("strings").at("corpus").get<size_t>(), 419u);
  ASSERT_EQ(rows.size(), 419u + meta.at("strings").at("extra").get<size_t>());
  const bool nfc_model = normalizes_nfc(name);
  size_t ok_ids = 0, ok_dec = 0;
  for (const auto& r : rows) {
    const std::string text = r.at("text").get<std::string>();
    const auto want = r.at("ids").get<std::vector<int32_t>>();
    const auto got = tok.encode(text, true);
    if (got == want) ++ok_ids;
    else ADD_FAILURE() << name << ": ids differ for " << json(text).dump();
    // HF decodes to the normalized text; the goldens' "decoded" is HF's decode of its own ids.
    const std::string dec = tok.decode(want);
    if (dec == r.at("decoded").get<std::string>() && dec == expected_round_trip(tok, nfc_model, text, true)) ++ok_dec;
    else ADD_FAILURE() << name << ": decode differs for " << json(text).dump();
  }
  EXPECT_EQ(ok_ids, rows.size());
  EXPECT_EQ(ok_dec, rows.size());
}

TEST_P(ModelGoldens, BosAsHuggingFaceAddsIt) {
  const std::string name = GetParam();
  const Tokenizer& tok = model_tok(name);
  const auto prefix = json::parse(read_file(fixture(name + "/meta.json"))).at("add_special_tokens_prefix");
  if (prefix.empty()) {
    EXPECT_FALSE(tok.add_bos());
    return;
  }
  ASSERT_EQ(prefix.size(), 1u);
  EXPECT_TRUE(tok.add_bos());
  EXPECT_EQ(tok.bos_id(), prefix[0].get<int32_t>());
  EXPECT_EQ(tok.token_to_id(tok.bos_token()), tok.bos_id());
}

TEST_P(ModelGoldens, AddedTokensParseOnlyWhenAsked) {
  const Tokenizer& tok = model_tok(GetParam());
  ASSERT_FALSE(tok.added_tokens().tokens().empty());
  for (const auto& a : tok.added_tokens().tokens()) {
    EXPECT_EQ(tok.encode(a.content, true), std::vector<int32_t>{a.id}) << a.content;
    EXPECT_EQ(tok.encode("x" + a.content + "y", true).size(), 3u) << a.content;
    const auto plain = tok.encode(a.content, false);
    for (int32_t id : plain) ASSERT_FALSE(tok.is_added(id)) << a.content;
    EXPECT_EQ(tok.decode(plain), a.content);
    EXPECT_EQ(tok.token_to_id(a.content), a.id);
  }
}

TEST_P(ModelGoldens, RandomRoundTripsAndStreaming) {
  const std::string name = GetParam();
  const Tokenizer& tok = model_tok(name);
  const bool nfc_model = normalizes_nfc(name);
  std::vector<std::string> pieces = {"a", " ", "  ", "\n", "\n\n", "\t", "0", "12345", "日本語", "😀", "é", "e\u0301",
                                     "\u0301", "\u1100", "\u1161", "\u11a8", "\u212b", "Ω", "ﬁ", "'s", "'S", " don't",
                                     "<", "|>", "<|", "\r\n", "\xff", "\xe6\x97", "\x80", "\u3000", "\u0085", "ſ"};
  const auto& added = tok.added_tokens().tokens();
  for (size_t i = 0; i < added.size(); i += 7) pieces.push_back(added[i].content);
  std::mt19937 rng(5);
  for (int trial = 0; trial < 300; ++trial) {
    std::string s;
    for (size_t n = 1 + rng() % 40; n > 0; --n) s += pieces[rng() % pieces.size()];
    for (bool parse : {true, false}) {
      const auto ids = tok.encode(s, parse);
      const std::string want = expected_round_trip(tok, nfc_model, s, parse);
      ASSERT_EQ(tok.decode(ids), want) << name << " #" << trial << " parse_special=" << parse;
      if (!parse)
        for (int32_t id : ids) ASSERT_FALSE(tok.is_added(id)) << name << " #" << trial << ": added token from text";
      StreamDecoder sd(tok);
      std::string streamed;
      for (int32_t id : ids) streamed += sd.push(id);
      streamed += sd.flush();
      ASSERT_EQ(streamed, want) << name << " #" << trial << " (streamed)";
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Models, ModelGoldens,
                         ::testing::Values("qwen3", "llama3_1", "r1-distill-qwen", "r1-distill-llama"),
                         [](const auto& info) {
                           std::string s = info.param;
                           for (char& c : s)
                             if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
                           return s;
                         });

// The normalizer's shortcut (text without code points that NFC can change is left alone) never skips a change:
// every code point alone, after a starter that composes, and before a combining mark.
TEST(NormalizerQuickCheck, NeverSkipsTextThatNfcChanges) {
  const Normalizer n(json{{"type", "NFC"}});
  size_t changed = 0;
  for (uint32_t cp = 0; cp < 0x110000; ++cp) {
    if (cp >= 0xD800 && cp < 0xE000) continue;
    std::string c;
    append_utf8(c, cp);
    for (const std::string& s :
         {c, "a" + c, "\u1100" + c, "\u0b47" + c, "\u3046" + c, c + "\u0301", c + "\u3099", c + c}) {
      std::string out;
      const bool applied = n.apply(s, out);
      const std::string want = nfc(s);
      if (want != s) {
        ++changed;
        ASSERT_TRUE(applied) << "U+" << std::hex << cp << ": NFC changes " << json(s).dump() << " but it was skipped";
      }
      if (applied) ASSERT_EQ(out, want);
    }
  }
  EXPECT_GT(changed, 10000u);
  EXPECT_THROW(Normalizer(json{{"type", "NFKC"}}), ds::Error);
  EXPECT_THROW(
      Normalizer(json::parse(R"({"type": "Sequence", "normalizers": [{"type": "NFC"}, {"type": "Lowercase"}]})")),
      ds::Error);
  EXPECT_TRUE(Normalizer(json::parse(R"({"type": "Sequence", "normalizers": []})")).identity());
  EXPECT_FALSE(Normalizer(json::parse(R"({"type": "Sequence", "normalizers": [{"type": "NFC"}]})")).identity());
}

// ---------------------------------------------------------------------------------------------------------------
// Facts of each tokenizer.

TEST(ModelQwen3, VocabularyAndNormalization) {
  const Tokenizer& tok = model_tok("qwen3");
  EXPECT_EQ(tok.vocab_size(), 151669u);
  EXPECT_EQ(tok.bos_id(), -1);  // bos_token null
  EXPECT_EQ(tok.eos_token(), "<|im_end|>");
  EXPECT_EQ(tok.eos_id(), 151645);
  EXPECT_EQ(tok.token_to_id("<think>"), 151667);
  EXPECT_FALSE(tok.is_special(151667));
  EXPECT_EQ(tok.encode("Hello world", true), (std::vector<int32_t>{9707, 1879}));
  EXPECT_EQ(tok.encode("333", true), (std::vector<int32_t>{18, 18, 18}));  // one digit per pre-token
  // NFC: decomposed input encodes as the composed text and decodes to it.
  EXPECT_EQ(tok.encode("re\u0301sume\u0301", true), tok.encode("résumé", true));
  EXPECT_EQ(tok.encode("\u212b", true), tok.encode("Å", true));                  // a singleton
  EXPECT_EQ(tok.encode("\u1100\u1161\u11a8", true), tok.encode("각", true));     // Hangul jamo compose
  EXPECT_EQ(tok.decode(tok.encode("e\u0301", false)), "é");
  // Normalization happens between added tokens, not across them.
  std::vector<int32_t> want = tok.encode("e", true);
  want.push_back(151645);
  for (int32_t id : tok.encode("\u0301", true)) want.push_back(id);
  EXPECT_EQ(tok.encode("e<|im_end|>\u0301", true), want);
  // ...and only there: the raw input is not normalized, so a mark after an added token stays a mark.
  EXPECT_EQ(tok.decode(tok.encode("<|im_end|>\u0301", true)), "<|im_end|>\u0301");
  EXPECT_EQ(tok.decode(tok.encode(">\u0338", true)), "\u226f");
}

TEST(ModelLlama31, VocabularyAndBos) {
  const Tokenizer& tok = model_tok("llama3_1");
  EXPECT_EQ(tok.vocab_size(), 128256u);
  EXPECT_EQ(tok.bos_id(), 128000);
  EXPECT_EQ(tok.eos_token(), "<|eot_id|>");
  EXPECT_EQ(tok.eos_id(), 128009);
  EXPECT_TRUE(tok.add_bos());  // tokenizer_config.json has no add_bos_token: the TemplateProcessing decides
  EXPECT_EQ(tok.encode("Hello world", true), (std::vector<int32_t>{9906, 1917}));
  EXPECT_EQ(tok.encode("3333", true), (std::vector<int32_t>{8765, 18}));  // up to three digits per pre-token
  EXPECT_EQ(tok.decode(tok.encode("e\u0301", true)), "e\u0301");           // no normalizer
}

TEST(ModelR1DistillQwen, DeepSeekTokensOnTheQwenVocabulary) {
  const Tokenizer& tok = model_tok("r1-distill-qwen");
  EXPECT_EQ(tok.bos_id(), 151646);
  EXPECT_EQ(tok.eos_id(), 151643);
  EXPECT_TRUE(tok.add_bos());
  EXPECT_EQ(tok.vocab_size(), 151665u);
  const std::pair<const char*, int32_t> ids[] = {{"<｜end▁of▁sentence｜>", 151643}, {"<｜User｜>", 151644},
                                                 {"<｜Assistant｜>", 151645}, {"<｜begin▁of▁sentence｜>", 151646},
                                                 {"<think>", 151648}, {"</think>", 151649}};
  for (const auto& [text, id] : ids) EXPECT_EQ(tok.token_to_id(text), id) << text;
  EXPECT_FALSE(tok.is_special(151644));
  EXPECT_TRUE(tok.is_special(151646));
  // The shipped chat template, rendered and encoded with the scaffold's special tokens only.
  const ChatTemplate tmpl = ChatTemplate::from_tokenizer(tok);
  const json msgs = json::parse(R"([{"role": "user", "content": "1+1?"},
      {"role": "assistant", "content": "<think>\nSimple.\n</think>\n\n2"}, {"role": "user", "content": "And 2+2?"}])");
  ChatOptions opt;
  opt.add_generation_prompt = true;
  const RenderedPrompt p = tmpl.render(msgs, opt);
  EXPECT_EQ(p.text, "<｜begin▁of▁sentence｜><｜User｜>1+1?<｜Assistant｜>\n\n2<｜end▁of▁sentence｜><｜User｜>And 2+2?"
                    "<｜Assistant｜><think>\n");
  const auto got = encode_prompt(tok, p);
  EXPECT_EQ(got, tok.encode(p.text, true));
  EXPECT_EQ(got.front(), 151646);
  EXPECT_EQ(got.back(), 198);  // "\n" after <think>
  EXPECT_EQ(got[got.size() - 2], 151648);
  EXPECT_EQ(std::count(got.begin(), got.end(), 151644), 2);
}

TEST(ModelR1DistillQwen, ReasoningSplitByTokenId) {
  const Tokenizer& tok = model_tok("r1-distill-qwen");
  ReasoningParser p(tok, prompt_opens_reasoning("<｜Assistant｜><think>\n"));
  ASSERT_TRUE(p.by_token_id());
  const auto r = p.parse(tok.encode("Let me think: 2+2.\n</think>\n\nThe answer is 4.", true));
  EXPECT_EQ(r.reasoning, "Let me think: 2+2.\n");
  EXPECT_EQ(r.content, "\n\nThe answer is 4.");
  ReasoningParser q(tok, true);
  EXPECT_EQ(q.parse(tok.encode("a</think>b", false)).reasoning, "a</think>b");  // spelled, not the token
}

TEST(ModelR1DistillLlama, DeepSeekTokensOnTheLlamaVocabulary) {
  const Tokenizer& tok = model_tok("r1-distill-llama");
  EXPECT_EQ(tok.bos_id(), 128000);
  EXPECT_EQ(tok.eos_id(), 128001);
  EXPECT_TRUE(tok.add_bos());
  EXPECT_EQ(tok.token_to_id("<｜begin▁of▁sentence｜>"), 128000);
  EXPECT_EQ(tok.token_to_id("<|begin_of_text|>"), -1);  // renamed, not added
  const ChatTemplate tmpl = ChatTemplate::from_tokenizer(tok);
  ChatOptions opt;
  opt.add_generation_prompt = true;
  const RenderedPrompt p = tmpl.render(json::parse(R"([{"role": "user", "content": "Hi"}])"), opt);
  const auto got = encode_prompt(tok, p);
  EXPECT_EQ(got.front(), 128000);
  EXPECT_EQ(tok.decode(got), p.text);
}

// Every golden conversation through each distill's own template and tokenizer: the scaffold-only encoding equals HF's
// encoding of the whole rendered text when the caller's data holds no added-token text (where it does, e.g. a
// `<tool_response>` or `<think>` typed into content for Qwen3, that text stays plain text by design).
TEST(ModelChat, ScaffoldEncodingMatchesFullEncoding) {
  const auto convs = json::parse(read_file(fixture("chat_conversations.json")));
  for (const auto& [name, tmpl_name] : {std::pair{"r1-distill-qwen", "deepseek-r1-distill-qwen"},
                                        std::pair{"r1-distill-llama", "deepseek-r1-distill-llama"},
                                        std::pair{"qwen3", "qwen3"}}) {
    const Tokenizer& tok = model_tok(name);
    const ChatTemplate t(read_file(fixture(std::string("templates/") + tmpl_name + ".jinja")), tok.bos_token(),
                         tok.eos_token());
    size_t rendered = 0;
    for (auto it = convs.begin(); it != convs.end(); ++it) {
      if (it.key() == "special_text_in_content") continue;
      RenderedPrompt p;
      try {
        p = t.render(it.value(), ChatOptions{true, std::nullopt, nullptr});
      } catch (const ds::Error&) {
        continue;  // the template refuses it (as Jinja2 does: tokenizer_chat checks which)
      }
      const auto ids = encode_prompt(tok, p);
      EXPECT_EQ(tok.decode(ids), p.text) << name << " / " << it.key();
      bool data_has_added = false;
      for (const auto& [b, e] : p.data_spans) {
        std::vector<Segment> segs;
        tok.added_tokens().split(std::string_view(p.text).substr(b, e - b), segs);
        for (const Segment& g : segs) data_has_added |= g.id >= 0;
      }
      if (data_has_added) continue;
      EXPECT_EQ(ids, tok.encode(p.text, true)) << name << " / " << it.key();
      ++rendered;
    }
    EXPECT_GE(rendered, 14u) << name;
  }
}

// ---------------------------------------------------------------------------------------------------------------
// llama.cpp's tokenizer tests, through tokenizer.json and through GGUF vocabularies.

struct LlamaCppTests {
  std::vector<std::string> texts;
  std::vector<std::vector<int32_t>> ids;
};

// llama.cpp's format (tests/test-tokenizer-0.cpp): .inp holds the texts, each followed by
// "\n__ggml_vocab_test__\n"; .out one line per text with its ids separated by spaces.
LlamaCppTests read_llamacpp(const std::string& stem) {
  LlamaCppTests t;
  const std::string inp = read_file(fixture("llamacpp/" + stem + ".gguf.inp"));
  const std::string sep = "\n__ggml_vocab_test__\n";
  for (size_t pos = 0, next; (next = inp.find(sep, pos)) != std::string::npos; pos = next + sep.size())
    t.texts.push_back(inp.substr(pos, next - pos));
  std::istringstream out(read_file(fixture("llamacpp/" + stem + ".gguf.out")));
  for (std::string line; std::getline(out, line);) {
    std::istringstream ls(line);
    std::vector<int32_t> ids;
    for (int32_t id; ls >> id;) ids.push_back(id);
    t.ids.push_back(std::move(ids));
  }
  EXPECT_EQ(t.texts.size(), t.ids.size()) << stem;
  return t;
}

size_t count_matches(const Tokenizer& tok, const LlamaCppTests& t, const std::string& what) {
  size_t ok = 0;
  for (size_t i = 0; i < t.texts.size() && i < t.ids.size(); ++i) {
    if (tok.encode(t.texts[i], true) == t.ids[i]) ++ok;
    else ADD_FAILURE() << what << ": ids differ for " << json(t.texts[i]).dump();
  }
  return ok;
}

const fs::path& scratch() {
  static const struct Dir {
    fs::path p;
    Dir() {
      p = fs::temp_directory_path() / ("ds_tok_models_test_" + std::to_string(::getpid()));
      fs::remove_all(p);
      fs::create_directories(p);
    }
    ~Dir() {
      std::error_code ec;
      fs::remove_all(p, ec);
    }
  } dir;
  return dir.p;
}

struct GgufCase {
  const char* pre;        // tokenizer.ggml.pre
  const char* tokenizer;  // the fixture tokenizer.json the GGUF is converted from
  int64_t vocab_size;     // config.json's (the converter pads to it with [PADn])
  const char* arch;
  const char* stem;       // llama.cpp's test files
};

// The GGUF llama.cpp's converter writes for the tokenizer (metadata only), loaded through tokenizer.ggml.*.
Tokenizer gguf_tokenizer(const GgufCase& c) {
  const TokenizerFiles f = model_files(c.tokenizer);
  const std::string path = (scratch() / (std::string(c.pre) + "-" + c.tokenizer + ".gguf")).string();
  converter_vocab(f.tokenizer, f.config, c.vocab_size, c.pre, c.arch).write(path);
  return tokenizer_from_gguf(path);
}

void PrintTo(const GgufCase& c, std::ostream* os) { *os << c.pre << " (" << c.tokenizer << ")"; }

class LlamaCppVocab : public ::testing::TestWithParam<GgufCase> {};

TEST_P(LlamaCppVocab, GgufOfTheTokenizerPassesLlamaCppTests) {
  const GgufCase& c = GetParam();
  const LlamaCppTests t = read_llamacpp(c.stem);
  ASSERT_GE(t.texts.size(), 46u);
  const Tokenizer tok = gguf_tokenizer(c);
  EXPECT_EQ(count_matches(tok, t, std::string(c.pre) + " GGUF"), t.texts.size());
}

const GgufCase kQwen2{"qwen2", "qwen3", 151936, "qwen2", "ggml-vocab-qwen2"};
const GgufCase kR1Qwen{"deepseek-r1-qwen", "r1-distill-qwen", 151936, "qwen2", "ggml-vocab-qwen2"};
const GgufCase kLlama3{"llama-bpe", "llama3_1", 128256, "llama", "ggml-vocab-llama-bpe"};
// Qwen3.5's pre-tokenizer on the Qwen vocabulary, as llama.cpp's ggml-vocab-qwen35.gguf is.
const GgufCase kQwen35{"qwen35", "qwen3", 151936, "qwen2", "ggml-vocab-qwen35"};

// The GGUF encodes the HF goldens of the tokenizer.json it was converted from (NFC included for the Qwen names).
class GgufOfHfTokenizer : public ::testing::TestWithParam<GgufCase> {};

TEST_P(GgufOfHfTokenizer, MatchesHuggingFaceGoldens) {
  const GgufCase& c = GetParam();
  const Tokenizer g = gguf_tokenizer(c);
  const Tokenizer& h = model_tok(c.tokenizer);
  EXPECT_EQ(g.bos_id(), h.bos_id());
  EXPECT_EQ(g.eos_id(), h.eos_id());
  EXPECT_EQ(g.add_bos(), h.add_bos());
  size_t ok = 0;
  const auto rows = read_jsonl(fixture(std::string(c.tokenizer) + "/encode.jsonl"));
  for (const auto& r : rows) {
    if (g.encode(r.at("text").get<std::string>(), true) == r.at("ids").get<std::vector<int32_t>>()) ++ok;
    else ADD_FAILURE() << c.pre << " GGUF: ids differ for " << r.at("text").dump();
  }
  EXPECT_EQ(ok, rows.size());
}

INSTANTIATE_TEST_SUITE_P(Pre, GgufOfHfTokenizer, ::testing::Values(kQwen2, kR1Qwen, kLlama3), [](const auto& info) {
  std::string s = info.param.pre;
  for (char& ch : s)
    if (!std::isalnum(static_cast<unsigned char>(ch))) ch = '_';
  return s;
});

INSTANTIATE_TEST_SUITE_P(Pre, LlamaCppVocab,
                         ::testing::Values(kQwen2, kR1Qwen, kLlama3, kQwen35),
                         [](const auto& info) {
                           std::string s = info.param.pre;
                           for (char& ch : s)
                             if (!std::isalnum(static_cast<unsigned char>(ch))) ch = '_';
                           return s;
                         });

TEST(LlamaCppVocabTokenizerJson, PassesLlamaCppTests) {
  // The HF tokenizer.json of the same vocabularies (llama.cpp's qwen2 files are Qwen1.5's: same BPE as Qwen3's).
  for (const auto& [stem, name] :
       {std::pair{"ggml-vocab-qwen2", "qwen3"}, std::pair{"ggml-vocab-qwen2", "r1-distill-qwen"},
        std::pair{"ggml-vocab-llama-bpe", "llama3_1"}, std::pair{"ggml-vocab-llama-bpe", "r1-distill-llama"}}) {
    const LlamaCppTests t = read_llamacpp(stem);
    EXPECT_EQ(count_matches(model_tok(name), t, name), t.texts.size()) << name;
  }
}

TEST(LlamaCppVocabFiles, LlamaCppsOwnVocabularyFiles) {
  const char* dir = std::getenv("DS_LLAMACPP_VOCAB_DIR");
  if (!dir) GTEST_SKIP() << "set DS_LLAMACPP_VOCAB_DIR to llama.cpp's models/ folder to run this";
  for (const char* stem : {"ggml-vocab-qwen2", "ggml-vocab-llama-bpe", "ggml-vocab-qwen35"}) {
    const std::string path = std::string(dir) + "/" + stem + ".gguf";
    ASSERT_TRUE(fs::exists(path)) << path;
    const Tokenizer tok = tokenizer_from_gguf(path);
    const LlamaCppTests t = read_llamacpp(stem);
    EXPECT_EQ(count_matches(tok, t, stem), t.texts.size()) << stem;
  }
}

}  // namespace
}  // namespace ds::tok::test
