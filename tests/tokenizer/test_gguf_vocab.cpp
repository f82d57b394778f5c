// SPDX-License-Identifier: MIT
// The tokenizer embedded in GGUF files (tokenizer/gguf_vocab.h):
//  - DeepSeek-V3: the GGUF llama.cpp's converter makes from the real tokenizer.json (written here in C++ by the same
//    recipe, byte-identical to tools/gguf_goldens/tokenizer_gguf.py's gguf-py output) gives the same ids for the 419
//    Hugging Face goldens, decodes them back, has the same vocabulary, bos/eos and added tokens, and renders the chat
//    goldens identically;
//  - the tiny tokenizers of the GGUF fixtures in ../shared/fixtures/gguf agree with their metadata;
//  - where the tokenizer comes from for --model (folder, GGUF, tokenizer.json beside a GGUF);
//  - malformed or unsupported metadata is a ds::Error naming the file and the key.
#include <unistd.h>

#include <cctype>
#include <cstdlib>
#include <filesystem>
#include <set>

#include "base/error.h"
#include "expect_error.h"
#include "io/gguf.h"
#include "tokenizer/chat_template.h"
#include "tokenizer/gguf_vocab.h"
#include "tokenizer/gguf_vocab_writer.h"
#include "tokenizer/tok_test_util.h"
#include "tokenizer/unicode.h"

namespace ds::tok::test {
namespace {

namespace fs = std::filesystem;
using ds::test::throws_with;

// A scratch folder per test process (ctest runs the cases of this binary in parallel), removed at exit.
const fs::path& scratch() {
  static const struct Dir {
    fs::path p;
    Dir() {
      p = fs::temp_directory_path() / ("ds_gguf_vocab_test_" + std::to_string(::getpid()));
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

fs::path fresh_dir(const std::string& name) {
  const fs::path d = scratch() / name;
  fs::remove_all(d);
  fs::create_directories(d);
  return d;
}

const nlohmann::json& v3_tokenizer_json() {
  static const nlohmann::json* j = [] {
    const std::string path = tokenizer_dir() + "/tokenizer.json";
    std::ifstream probe(path);
    if (!probe) {
      ADD_FAILURE() << "DeepSeek-V3 tokenizer missing at " << tokenizer_dir() << ": run `bash scripts/fetch_tokenizer.sh`";
      std::abort();
    }
    return new nlohmann::json(nlohmann::json::parse(read_file(path)));
  }();
  return *j;
}
const nlohmann::json& v3_config_json() {
  static const nlohmann::json* j =
      new nlohmann::json(nlohmann::json::parse(read_file(tokenizer_dir() + "/tokenizer_config.json")));
  return *j;
}

constexpr int64_t kV3VocabSize = 129280;  // DeepSeek-V3 config.json vocab_size: ids 128815.. are [PADn]

// The DeepSeek-V3 GGUF (tokenizer metadata only), alone in its folder. DS_GGUF_VOCAB_DUMP=FILE keeps a copy (for
// the byte comparison with tools/gguf_goldens/tokenizer_gguf.py).
const std::string& v3_gguf_path() {
  static const std::string* p = [] {
    const fs::path d = fresh_dir("v3");
    const std::string path = (d / "DeepSeek-V3-tokenizer.gguf").string();
    converter_vocab(v3_tokenizer_json(), v3_config_json(), kV3VocabSize, "deepseek-v3").write(path);
    if (const char* dump = std::getenv("DS_GGUF_VOCAB_DUMP")) fs::copy_file(path, dump, fs::copy_options::overwrite_existing);
    return new std::string(path);
  }();
  return *p;
}

const Tokenizer& v3_gguf() {
  static const Tokenizer* t = new Tokenizer(load_tokenizer(v3_gguf_path()));
  return *t;
}

// ---------------------------------------------------------------------------------------------------------------
// DeepSeek-V3

TEST(GgufVocabV3, FileHoldsTheConverterMetadata) {
  const auto f = io::GgufFile::open(v3_gguf_path());
  EXPECT_TRUE(f->tensors().empty());
  ASSERT_NE(f->find("tokenizer.ggml.tokens"), nullptr);
  EXPECT_EQ(f->find("tokenizer.ggml.tokens")->strs.size(), size_t(kV3VocabSize));
  EXPECT_EQ(f->find("tokenizer.ggml.tokens")->strs[128815], "[PAD128815]");
  EXPECT_EQ(f->find("tokenizer.ggml.token_type")->ints[0], 3);
  EXPECT_EQ(f->find("tokenizer.ggml.token_type")->ints[128815], 5);
  EXPECT_EQ(f->find("tokenizer.ggml.merges")->strs.size(), v3_tokenizer_json().at("model").at("merges").size());
  EXPECT_EQ(f->find("tokenizer.ggml.pre")->s, "deepseek-v3");
  EXPECT_EQ(f->find("tokenizer.ggml.bos_token_id")->u, 0u);
  EXPECT_EQ(f->find("tokenizer.ggml.eos_token_id")->u, 1u);
  EXPECT_EQ(f->find("tokenizer.ggml.padding_token_id")->u, 1u);
  EXPECT_EQ(f->find("tokenizer.chat_template")->s, v3_config_json().at("chat_template").get<std::string>());
}

TEST(GgufVocabV3, PreTokenizerIsTokenizerJsons) {
  // The deepseek-v3 name maps to exactly the pre_tokenizer section of DeepSeek-V3's tokenizer.json.
  EXPECT_EQ(pre_tokenizer_for_gguf_pre("deepseek-v3"), v3_tokenizer_json().at("pre_tokenizer"));
  const TokenizerJson j = tokenizer_json_from_gguf(*io::GgufFile::open(v3_gguf_path()));
  EXPECT_EQ(j.tokenizer.at("pre_tokenizer"), v3_tokenizer_json().at("pre_tokenizer"));
  // The BPE vocabulary is tokenizer.json's (the GGUF marks ids 0-2, which are both, as control tokens).
  nlohmann::json want = v3_tokenizer_json().at("model").at("vocab");
  for (const char* t : {"<｜begin▁of▁sentence｜>", "<｜end▁of▁sentence｜>", "<｜▁pad▁｜>"}) want.erase(t);
  EXPECT_EQ(j.tokenizer.at("model").at("vocab"), want);
  EXPECT_EQ(j.tokenizer.at("model").at("merges"), v3_tokenizer_json().at("model").at("merges"));
}

TEST(GgufVocabV3, HuggingFaceEncodeGoldens) {
  const Tokenizer& tok = v3_gguf();
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

TEST(GgufVocabV3, SameVocabularyAndSpecialTokensAsTokenizerJson) {
  const Tokenizer& g = v3_gguf();
  const Tokenizer& h = v3();
  EXPECT_EQ(g.vocab_size(), h.vocab_size());
  EXPECT_EQ(g.vocab_size(), 128815u);
  EXPECT_EQ(g.bos_id(), h.bos_id());
  EXPECT_EQ(g.eos_id(), h.eos_id());
  EXPECT_EQ(g.bos_token(), h.bos_token());
  EXPECT_EQ(g.eos_token(), h.eos_token());
  EXPECT_EQ(g.add_bos(), h.add_bos());
  EXPECT_TRUE(g.add_bos());
  size_t mismatched = 0;
  for (int32_t id = 0; id < int32_t(kV3VocabSize) + 8; ++id) {
    const bool same = g.is_valid_id(id) == h.is_valid_id(id) && g.id_to_token(id) == h.id_to_token(id) &&
                      g.token_to_piece(id) == h.token_to_piece(id) && g.is_added(id) == h.is_added(id);
    if (!same && ++mismatched < 10) ADD_FAILURE() << "token " << id << " differs";
  }
  EXPECT_EQ(mismatched, 0u);
  // [PADn] ids are unknown, as in the HF tokenizer.
  EXPECT_FALSE(g.is_valid_id(128815));
  EXPECT_FALSE(g.is_valid_id(int32_t(kV3VocabSize) - 1));
  EXPECT_EQ(g.decode({128815, 19923, 129279}), "Hello");
  // Added tokens: same ids and texts; every HF special token is special; the only differences are the added tokens
  // HF marks non-special that the converter writes as control because they look special (<｜User｜> ...).
  ASSERT_EQ(g.added_tokens().tokens().size(), h.added_tokens().tokens().size());
  size_t promoted = 0;
  for (const auto& a : h.added_tokens().tokens()) {
    const AddedToken* b = g.added_tokens().find_id(a.id);
    ASSERT_NE(b, nullptr) << a.content;
    EXPECT_EQ(b->content, a.content);
    if (a.special) EXPECT_TRUE(b->special) << a.content;
    if (!a.special && b->special) {
      EXPECT_TRUE(converter_looks_special(a.content)) << a.content;
      ++promoted;
    }
    EXPECT_EQ(g.token_to_id(a.content), h.token_to_id(a.content)) << a.content;
  }
  EXPECT_EQ(promoted, 14u);
  EXPECT_TRUE(g.is_special(g.token_to_id("<｜User｜>")));
}

TEST(GgufVocabV3, ChatTemplateGoldens) {
  const Tokenizer& g = v3_gguf();
  EXPECT_EQ(g.chat_template(), v3().chat_template());
  const ChatTemplate tmpl = ChatTemplate::from_tokenizer(g);
  // transformers' apply_chat_template renderings with their ids.
  const auto rows = read_jsonl(fixture("chat.jsonl"));
  ASSERT_EQ(rows.size(), 12u);
  size_t ok = 0;
  for (const auto& r : rows) {
    ChatOptions opt;
    opt.add_generation_prompt = r.at("add_generation_prompt").get<bool>();
    const RenderedPrompt p = tmpl.render(r.at("messages"), opt);
    const auto want = r.at("ids").get<std::vector<int32_t>>();
    EXPECT_EQ(p.text, r.at("text").get<std::string>());
    EXPECT_EQ(encode_prompt(g, p, ContentSpecials::AsText), want) << p.text;
    ok += p.text == r.at("text").get<std::string>() && encode_prompt(g, p, ContentSpecials::AsText) == want;
  }
  EXPECT_EQ(ok, rows.size());
  // Jinja2 renderings of the V3 template (the GGUF's tokenizer.chat_template).
  const auto goldens = read_jsonl(fixture("chat_goldens.jsonl"));
  const auto convs = nlohmann::json::parse(read_file(fixture("chat_conversations.json")));
  size_t n = 0, same = 0;
  for (const auto& r : goldens) {
    if (r.at("template") != "deepseek-v3" || r.contains("error")) continue;
    ++n;
    ChatOptions opt;
    opt.add_generation_prompt = r.at("add_generation_prompt").get<bool>();
    const RenderedPrompt p = tmpl.render(convs.at(r.at("conversation").get<std::string>()), opt);
    EXPECT_EQ(p.text, r.at("text").get<std::string>()) << r.at("conversation");
    same += p.text == r.at("text").get<std::string>();
  }
  EXPECT_GE(n, 30u);
  EXPECT_EQ(same, n);
}

TEST(GgufVocabV3, TokenizerJsonBesideTheGgufWins) {
  // A GGUF whose own metadata would be refused, next to a tokenizer.json: the folder's tokenizer is used.
  const fs::path d = fresh_dir("beside");
  GgufWriter w = converter_vocab(v3_tokenizer_json(), v3_config_json(), kV3VocabSize, "deepseek-v3");
  w.str("tokenizer.ggml.model", "llama");
  const std::string path = (d / "model.gguf").string();
  w.write(path);
  EXPECT_TRUE(throws_with([&] { (void)tokenizer_from_gguf(path); }, {path, "tokenizer.ggml.model", "llama"}));
  fs::create_symlink(fs::absolute(tokenizer_dir() + "/tokenizer.json"), d / "tokenizer.json");
  fs::create_symlink(fs::absolute(tokenizer_dir() + "/tokenizer_config.json"), d / "tokenizer_config.json");
  const Tokenizer t = load_tokenizer(path);
  EXPECT_EQ(t.encode("Hello!", true), (std::vector<int32_t>{19923, 3}));
  EXPECT_FALSE(t.is_special(t.token_to_id("<｜User｜>")));  // tokenizer.json's flag, not the GGUF's
  ASSERT_TRUE(try_load_tokenizer(path).has_value());
}

// ---------------------------------------------------------------------------------------------------------------
// The GGUF fixtures' tiny tokenizers (byte-level vocabularies without merges, pre "default").

class GgufVocabFixtures : public ::testing::TestWithParam<const char*> {};

TEST_P(GgufVocabFixtures, MatchesItsMetadata) {
  const std::string path = std::string(DS_SOURCE_DIR) + "/../shared/fixtures/gguf/" + GetParam();
  if (!fs::exists(path)) GTEST_SKIP() << path << " is missing (../shared beside the repository)";
  ASSERT_FALSE(fs::exists(fs::path(path).parent_path() / "tokenizer.json"));
  const auto f = io::GgufFile::open(path);
  const auto& tokens = f->find("tokenizer.ggml.tokens")->strs;
  const auto& types = f->find("tokenizer.ggml.token_type")->ints;
  ASSERT_EQ(tokens.size(), types.size());
  const std::string arch = f->find("general.architecture")->s;
  ASSERT_NE(f->find(arch + ".vocab_size"), nullptr);
  EXPECT_EQ(int64_t(tokens.size()), f->find(arch + ".vocab_size")->i);

  const Tokenizer t = load_tokenizer(path);
  EXPECT_EQ(t.vocab_size(), tokens.size());
  EXPECT_EQ(t.bos_id(), f->find("tokenizer.ggml.bos_token_id")->i);
  EXPECT_EQ(t.eos_id(), f->find("tokenizer.ggml.eos_token_id")->i);
  EXPECT_EQ(t.add_bos(), f->find("tokenizer.ggml.add_bos_token")->i != 0);
  EXPECT_EQ(t.bos_token(), tokens[size_t(t.bos_id())]);
  EXPECT_EQ(t.chat_template(), "");
  for (size_t i = 0; i < tokens.size(); ++i) {
    EXPECT_EQ(t.id_to_token(int32_t(i)), tokens[i]) << i;
    EXPECT_EQ(t.is_special(int32_t(i)), types[i] == 3) << i;
  }
  EXPECT_FALSE(t.is_valid_id(int32_t(tokens.size())));
  // No merges: one token per byte, each the byte's ByteLevel character; the text round-trips.
  const std::string text = "Hello, world! 123 ünïcödé 日本\n\ttabs";
  const auto ids = t.encode(text, true);
  EXPECT_EQ(ids.size(), text.size());
  for (size_t i = 0; i < ids.size(); ++i) {
    std::string ch;
    append_utf8(ch, byte_to_codepoint()[uint8_t(text[i])]);
    EXPECT_EQ(tokens[size_t(ids[i])], ch) << i;
  }
  EXPECT_EQ(t.decode(ids), text);
  // The control tokens parse as themselves and are skipped on request.
  const auto with_bos = t.encode(t.bos_token() + "hi" + t.eos_token(), true);
  ASSERT_EQ(with_bos.size(), 4u);
  EXPECT_EQ(with_bos.front(), t.bos_id());
  EXPECT_EQ(with_bos.back(), t.eos_id());
  EXPECT_EQ(t.decode(with_bos, /*skip_special=*/true), "hi");
}

INSTANTIATE_TEST_SUITE_P(Shared, GgufVocabFixtures,
                         ::testing::Values("tiny-v3/F32.gguf", "tiny-gguf-v2l/Q8_0.gguf"),
                         [](const auto& info) {
                           std::string s = info.param;
                           for (char& c : s)
                             if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
                           return s;
                         });

// ---------------------------------------------------------------------------------------------------------------
// Small synthetic vocabularies: pre-tokenizer names, entry points, errors.

// 256 ByteLevel byte tokens, "he", "ll", "hell", "hello", " w" with merges, two control tokens and unused padding.
GgufWriter small_vocab(const std::string& pre = "deepseek-v3") {
  std::vector<std::string> tokens = {"<|bos|>", "<|eos|>"};
  std::vector<int32_t> types = {3, 3};
  for (int b = 0; b < 256; ++b) {
    std::string s;
    append_utf8(s, byte_to_codepoint()[size_t(b)]);
    tokens.push_back(s);
    types.push_back(1);
  }
  for (const char* t : {"he", "ll", "hell", "hello", "Ġw"}) {
    tokens.push_back(t);
    types.push_back(1);
  }
  tokens.push_back("<tool>");
  types.push_back(4);
  tokens.push_back("[PAD264]");
  types.push_back(5);
  GgufWriter w;
  w.str("general.architecture", "deepseek2");
  w.str("tokenizer.ggml.model", "gpt2");
  w.str("tokenizer.ggml.pre", pre);
  w.str_array("tokenizer.ggml.tokens", tokens);
  w.i32_array("tokenizer.ggml.token_type", types);
  w.str_array("tokenizer.ggml.merges", {"h e", "l l", "he ll", "hell o", "Ġ w"});
  w.u32("tokenizer.ggml.bos_token_id", 0);
  w.u32("tokenizer.ggml.eos_token_id", 1);
  w.boolean("tokenizer.ggml.add_bos_token", true);
  w.str("tokenizer.chat_template", "{{ bos_token }}{% for m in messages %}{{ m['content'] }}{% endfor %}");
  return w;
}

std::string write(const GgufWriter& w, const std::string& name) {
  const std::string path = (fresh_dir(name) / (name + ".gguf")).string();
  w.write(path);
  return path;
}

TEST(GgufVocab, SmallVocabularyLoads) {
  const std::string path = write(small_vocab(), "small");
  const Tokenizer t = load_tokenizer(path);
  EXPECT_EQ(t.vocab_size(), 264u);  // the unused [PAD264] is not a token
  EXPECT_EQ(t.bos_id(), 0);
  EXPECT_EQ(t.eos_id(), 1);
  EXPECT_TRUE(t.add_bos());
  EXPECT_EQ(t.encode("hello world", true), (std::vector<int32_t>{261, 262, 2 + 'o', 2 + 'r', 2 + 'l', 2 + 'd'}));
  EXPECT_EQ(t.decode(t.encode("hello<tool> world<|eos|>", true)), "hello<tool> world<|eos|>");
  const int32_t tool = t.token_to_id("<tool>");
  EXPECT_EQ(tool, 263);
  EXPECT_TRUE(t.is_added(tool));
  EXPECT_FALSE(t.is_special(tool));  // user-defined
  EXPECT_TRUE(t.is_special(1));
  EXPECT_FALSE(t.is_valid_id(264));
  const ChatTemplate tmpl = ChatTemplate::from_tokenizer(t);
  EXPECT_EQ(tmpl.render(nlohmann::json::parse(R"([{"role":"user","content":"hi"}])")).text, "<|bos|>hi");
}

TEST(GgufVocab, PadFillTypedUserDefinedIsNoToken) {
  // Older converters typed the [PAD<id>] fill 4 (user-defined): still unknown ids, and its text stays plain text.
  GgufWriter w = small_vocab();
  std::vector<int32_t> types(265, 1);
  types[0] = types[1] = 3;
  types[263] = types[264] = 4;
  w.i32_array("tokenizer.ggml.token_type", types);
  const Tokenizer t = load_tokenizer(write(w, "pad4"));
  EXPECT_EQ(t.vocab_size(), 264u);
  EXPECT_FALSE(t.is_valid_id(264));
  EXPECT_EQ(t.encode("[PAD264]", true).size(), 8u);
  EXPECT_EQ(t.token_to_id("<tool>"), 263);  // a user-defined token that is not the fill
}

TEST(GgufVocab, EveryKnownPreTokenizerCompiles) {
  for (const char* pre : {"deepseek-v3", "deepseek-llm", "deepseek-coder", "qwen2", "deepseek-r1-qwen", "qwen35",
                          "llama-bpe", "llama3", "llama-v3", "default"}) {
    ASSERT_FALSE(pre_tokenizer_for_gguf_pre(pre).is_null()) << pre;
    const Tokenizer t = load_tokenizer(write(small_vocab(pre), std::string("pre_") + pre));
    EXPECT_EQ(t.decode(t.encode("hello world 12345 日本語 don't\n\n  x", true)), "hello world 12345 日本語 don't\n\n  x")
        << pre;
  }
  EXPECT_TRUE(pre_tokenizer_for_gguf_pre("gpt-4o").is_null());
  // The Llama 3 family keeps a pre-token that is a vocabulary token whole (ignore_merges): "hello" here.
  const TokenizerJson j = tokenizer_json_from_gguf(*io::GgufFile::open(write(small_vocab("llama-bpe"), "llama")));
  EXPECT_TRUE(j.tokenizer.at("model").at("ignore_merges").get<bool>());
  // DeepSeek V2: a letter run takes one leading space (no "Ġh" merge here, so "Ġ" + "hello").
  const Tokenizer v2 = load_tokenizer(write(small_vocab("deepseek-llm"), "v2"));
  EXPECT_EQ(v2.encode(" hello", false), (std::vector<int32_t>{2 + ' ', 261}));
}

TEST(GgufVocab, TryLoadFindsNothingWithoutATokenizer) {
  GgufWriter w = small_vocab();
  for (const char* k : {"tokenizer.ggml.model", "tokenizer.ggml.pre", "tokenizer.ggml.tokens", "tokenizer.ggml.token_type",
                        "tokenizer.ggml.merges", "tokenizer.chat_template"})
    w.remove(k);
  const std::string path = write(w, "none");
  EXPECT_FALSE(try_load_tokenizer(path).has_value());
  EXPECT_TRUE(throws_with([&] { (void)load_tokenizer(path); }, {path, "no tokenizer"}));
  GgufWriter none = small_vocab();
  none.str("tokenizer.ggml.model", "none");
  EXPECT_FALSE(try_load_tokenizer(write(none, "model_none")).has_value());
  // A folder without tokenizer.json.
  const fs::path empty = fresh_dir("empty");
  EXPECT_FALSE(try_load_tokenizer(empty.string()).has_value());
  EXPECT_TRUE(throws_with([&] { (void)load_tokenizer(empty.string()); }, {"tokenizer.json"}));
}

struct BadCase {
  const char* name;
  void (*edit)(GgufWriter&);
  std::vector<std::string> pieces;
};

TEST(GgufVocab, MalformedMetadataIsAnErrorNamingFileAndKey) {
  const std::vector<BadCase> cases = {
      {"sentencepiece", [](GgufWriter& w) { w.str("tokenizer.ggml.model", "llama"); },
       {"tokenizer.ggml.model", "'llama'", "SentencePiece", "gpt2"}},
      {"bert", [](GgufWriter& w) { w.str("tokenizer.ggml.model", "bert"); }, {"tokenizer.ggml.model", "'bert'"}},
      {"unknown_pre", [](GgufWriter& w) { w.str("tokenizer.ggml.pre", "mystery-7b"); },
       {"tokenizer.ggml.pre", "mystery-7b", "not a known pre-tokenizer"}},
      {"no_pre", [](GgufWriter& w) { w.remove("tokenizer.ggml.pre"); }, {"tokenizer.ggml.pre", "missing"}},
      {"no_tokens", [](GgufWriter& w) { w.remove("tokenizer.ggml.tokens"); }, {"tokenizer.ggml.tokens", "missing"}},
      {"tokens_not_strings", [](GgufWriter& w) { w.i32_array("tokenizer.ggml.tokens", {1, 2, 3}); },
       {"tokenizer.ggml.tokens", "array of strings", "i32"}},
      {"no_types", [](GgufWriter& w) { w.remove("tokenizer.ggml.token_type"); },
       {"tokenizer.ggml.token_type", "missing"}},
      {"types_short", [](GgufWriter& w) { w.i32_array("tokenizer.ggml.token_type", {3, 3, 1}); },
       {"tokenizer.ggml.token_type", "3 entries", "tokenizer.ggml.tokens", "265"}},
      {"byte_type",
       [](GgufWriter& w) {
         std::vector<int32_t> t(265, 1);
         t[0] = t[1] = 3;
         t[7] = 6;
         w.i32_array("tokenizer.ggml.token_type", t);
       },
       {"tokenizer.ggml.token_type[7] = 6", "byte"}},
      {"bad_type",
       [](GgufWriter& w) {
         std::vector<int32_t> t(265, 1);
         t[9] = 42;
         w.i32_array("tokenizer.ggml.token_type", t);
       },
       {"tokenizer.ggml.token_type[9] = 42"}},
      {"no_merges", [](GgufWriter& w) { w.remove("tokenizer.ggml.merges"); }, {"tokenizer.ggml.merges", "missing"}},
      {"merge_unknown", [](GgufWriter& w) { w.str_array("tokenizer.ggml.merges", {"h e", "x yz"}); },
       {"tokenizer.ggml.* metadata is invalid", "merge 'x yz'"}},
      {"bos_out_of_range", [](GgufWriter& w) { w.u32("tokenizer.ggml.bos_token_id", 70000); },
       {"tokenizer.ggml.bos_token_id = 70000", "outside the vocabulary"}},
      {"eos_unused", [](GgufWriter& w) { w.u32("tokenizer.ggml.eos_token_id", 264); },
       {"tokenizer.ggml.eos_token_id = 264", "unused"}},
      {"add_bos_not_bool", [](GgufWriter& w) { w.u32("tokenizer.ggml.add_bos_token", 1); },
       {"tokenizer.ggml.add_bos_token", "bool"}},
      {"template_not_string", [](GgufWriter& w) { w.u32("tokenizer.chat_template", 1); },
       {"tokenizer.chat_template", "string"}},
      {"duplicate_text",
       [](GgufWriter& w) {
         std::vector<std::string> t = {"<|bos|>", "<|eos|>"};
         for (int b = 0; b < 256; ++b) {
           std::string s;
           append_utf8(s, byte_to_codepoint()[size_t(b)]);
           t.push_back(s);
         }
         for (const char* x : {"he", "ll", "hell", "he", "Ġw", "<tool>", "[PAD264]"}) t.push_back(x);
         w.str_array("tokenizer.ggml.tokens", t);
       },
       {"tokenizer.ggml.tokens[261] = 'he'", "repeats the text of token 258"}},
  };
  for (const BadCase& c : cases) {
    GgufWriter w = small_vocab();
    c.edit(w);
    const std::string path = write(w, std::string("bad_") + c.name);
    std::vector<std::string> pieces = c.pieces;
    pieces.push_back(path);
    try {
      (void)load_tokenizer(path);
      ADD_FAILURE() << c.name << ": no error";
    } catch (const ds::Error& e) {
      const std::string msg = e.what();
      for (const std::string& p : pieces) EXPECT_NE(msg.find(p), std::string::npos) << c.name << ": '" << p << "' not in: " << msg;
    }
    // try_load_tokenizer reports a broken tokenizer too (it only returns nothing when there is none).
    EXPECT_THROW((void)try_load_tokenizer(path), ds::Error) << c.name;
  }
}

}  // namespace
}  // namespace ds::tok::test
