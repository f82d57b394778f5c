// SPDX-License-Identifier: MIT
// response_format's constrained decoding (server/json_constraint.h): the automaton byte by byte against JSON text
// (valid, invalid, cut short), schema-derived grammars (nested objects, arrays, enums, integers, anyOf, $ref), the
// refusals, complete(), and the token mask over tiny-R1's vocabulary: the trie pass equals a per-token check, and
// random walks through the allowed tokens always end in JSON that parses and fits the schema.
#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include "server/json_constraint.h"
#include "server/openai.h"

namespace ds::test {
namespace {

using server::JsonConstraint;
using server::JsonGrammar;
using server::JsonState;
using server::SchemaError;
using server::TokenVocab;
using ojson = nlohmann::ordered_json;

// Whether all of `text` is accepted, and whether it is then complete.
struct Outcome {
  bool accepted, complete;
};
Outcome run(const JsonGrammar& g, const std::string& text) {
  JsonState s = g.start();
  const bool ok = g.accept(s, text);
  return {ok, ok && g.complete(s)};
}

std::shared_ptr<const JsonGrammar> schema(const std::string& text, bool strict = false) {
  return JsonGrammar::from_schema(ojson::parse(text), strict);
}

const char* const kSchema = R"({"type": "object", "properties": {
    "answer": {"type": "integer"}, "unit": {"enum": ["apples", "pears"]}, "ok": {"type": "boolean"},
    "tags": {"type": "array", "items": {"type": "string", "maxLength": 8}, "maxItems": 3}},
  "required": ["answer", "unit", "ok", "tags"], "additionalProperties": false})";

TEST(JsonGrammar, AnyObjectAcceptsValidJson) {
  const auto g = JsonGrammar::any_object();
  for (const char* t : {"{}", "{\"a\":1}", "{ \"a\" : [1, -2.5e+3, true, false, null, \"x\"] }",
                        "{\"k\":{\"n\":{\"m\":[[],{}]}},\"s\":\"\\\"\\\\\\/\\b\\f\\n\\r\\t\\u00e9\"}",
                        "\n\n{\"é😀\":\"日本\"}", "{\"a\":0,\"b\":-0,\"c\":0.25,\"d\":1E5}"}) {
    const Outcome r = run(*g, t);
    EXPECT_TRUE(r.accepted && r.complete) << t;
    EXPECT_TRUE(nlohmann::json::accept(t)) << t;
  }
}

TEST(JsonGrammar, AnyObjectRejectsInvalidJson) {
  const auto g = JsonGrammar::any_object();
  for (const char* t : {"[1]", "1", "\"s\"", "{\"a\":}", "{\"a\":1,}", "{'a':1}", "{\"a\":01}", "{\"a\":\"\x01\"}",
                        "{\"a\":\"\xC0\xAF\"}", "{\"a\":\"\xED\xA0\x80\"}", "{\"a\":\"\\ud800\"}", "{\"a\":\"\\x\"}",
                        "{} ", "{}{}", "{\"a\":1.}", "{\"a\":-}", "{\"a\":1e}", "{\"a\":tru }", "{\"a\" 1}",
                        "{\"a\":.5}", "{,}"}) {
    const Outcome r = run(*g, t);
    EXPECT_FALSE(r.accepted) << t;
  }
  // Prefixes of a value are accepted but not complete.
  for (const char* t : {"{", "{\"a\"", "{\"a\":", "{\"a\":tr", "{\"a\":[1,2", "{\"a\":\"\xE6\x97"}) {
    const Outcome r = run(*g, t);
    EXPECT_TRUE(r.accepted && !r.complete) << t;
  }
}

TEST(JsonGrammar, WhitespaceAndNumbersAreBounded) {
  const auto g = JsonGrammar::any_object();
  EXPECT_TRUE(run(*g, "{" + std::string(16, ' ') + "}").accepted);
  EXPECT_FALSE(run(*g, "{" + std::string(17, ' ') + "}").accepted);
  EXPECT_TRUE(run(*g, "{\"a\":" + std::string(15, '9') + "}").complete);
  EXPECT_FALSE(run(*g, "{\"a\":" + std::string(16, '9') + "}").accepted);
  EXPECT_FALSE(run(*g, "{\"a\":1e1234}").accepted);
  // Nesting stops where the frames end; the value can always be closed.
  std::string deep = "{\"a\":";
  int opened = 0;
  JsonState s = g->start();
  ASSERT_TRUE(g->accept(s, deep));
  while (g->accept(s, uint8_t('['))) ++opened;
  EXPECT_EQ(opened, JsonState::kMaxDepth - 3);  // the root, the object, and room for a scalar in the last array
  s = g->start();
  ASSERT_TRUE(g->accept(s, deep + std::string(size_t(opened), '[') + "1" + std::string(size_t(opened), ']') + "}"));
  EXPECT_TRUE(g->complete(s));
}

TEST(JsonGrammar, SchemaObjectInOrderWithTypes) {
  const auto g = schema(kSchema, true);
  for (const char* t : {R"({"answer":12,"unit":"apples","ok":true,"tags":["a","b"]})",
                        R"({ "answer": -3, "unit": "pears", "ok": false, "tags": [] })",
                        R"({"answer":0,"unit":"pears","ok":false,"tags":["12345678","é日本😀x","",""]})"}) {
    const Outcome r = run(*g, t);
    const bool four = std::string(t).find("\"\",\"\"") != std::string::npos;  // four tags: one too many
    EXPECT_EQ(r.accepted && r.complete, !four) << t;
  }
  for (const char* t : {R"({"unit":"apples")", R"({"answer":1.5)", R"({"answer":1,"unit":"banana")",
                        R"({"answer":1,"unit":"apples","ok":true,"tags":["123456789"])", R"({"answer":1})",
                        R"({"answer":1,"unit":"apples","ok":true,"tags":[],"x":1})", R"({"answer":"1")",
                        R"({"answer":1,"unit":"apples","ok":1)"}) {
    EXPECT_FALSE(run(*g, t).accepted) << t;
  }
}

TEST(JsonGrammar, OptionalPropertiesAnyOfRefsEnums) {
  // Not strict: optional properties may be left out, in order.
  const auto g = schema(R"({"type":"object","properties":{"a":{"type":"integer"},"b":{"type":"string"},
                             "c":{"type":["number","null"]}},"required":["c"]})");
  for (const char* t : {R"({"c":null})", R"({"a":1,"c":2.5})", R"({"b":"x","c":null})", R"({"a":1,"b":"","c":-1})"})
    EXPECT_TRUE(run(*g, t).complete) << t;
  for (const char* t : {R"({})", R"({"a":1})", R"({"c":1,"a":1})", R"({"b":"x","a":1,"c":1})"})
    EXPECT_FALSE(run(*g, t).complete) << t;

  const auto r = schema(R"({"$defs":{"pt":{"type":"object","properties":{"x":{"type":"number"}},"required":["x"],
                             "additionalProperties":false}},
                             "type":"array","items":{"anyOf":[{"$ref":"#/$defs/pt"},{"type":"string","minLength":2},
                             {"const":null},{"enum":[1,12,true]}]},"minItems":1})");
  EXPECT_TRUE(run(*r, R"([{"x":1},"ab",null,1,12,true])").complete);
  EXPECT_FALSE(run(*r, R"([])").complete);
  EXPECT_FALSE(run(*r, R"(["a"])").accepted);  // minLength
  EXPECT_FALSE(run(*r, R"([13])").accepted);
  EXPECT_FALSE(run(*r, R"([{"y":1}])").accepted);
  const auto k = schema(R"({"const":"x"})");
  EXPECT_TRUE(run(*k, R"("x")").complete);
  EXPECT_FALSE(run(*k, R"("y")").accepted);

  // A top-level number is complete as soon as it could end, yet takes more digits.
  const auto n = schema(R"({"type":"number"})");
  JsonState s = n->start();
  ASSERT_TRUE(n->accept(s, "12"));
  EXPECT_TRUE(n->complete(s));
  EXPECT_TRUE(n->accept(s, ".5e-3"));
  EXPECT_TRUE(n->complete(s));
  EXPECT_FALSE(run(*schema(R"({"type":"integer"})"), "1.5").accepted);
  // Annotations are ignored; no keywords at all means any value.
  EXPECT_TRUE(run(*schema(R"({"title":"t","description":"d","properties":{"a":{}}})"), R"({"a":[{"b":null}]})").complete);
}

TEST(JsonGrammar, UnsupportedSchemasAreRefusedByName) {
  struct Case {
    const char* schema;
    const char* keyword;
    bool strict;
  };
  for (const Case& c : {Case{R"({"type":"string","pattern":"^a"})", "pattern", false},
                        Case{R"({"type":"string","format":"date"})", "format", false},
                        Case{R"({"type":"object","properties":{"n":{"type":"integer","minimum":0}}})", "minimum", false},
                        Case{R"({"oneOf":[{"type":"string"}]})", "oneOf", false},
                        Case{R"({"allOf":[{"type":"string"}]})", "allOf", false},
                        Case{R"({"type":"object","additionalProperties":{"type":"string"}})", "additionalProperties", false},
                        Case{R"({"type":"object","properties":{"a":{"type":"string"}},"required":[]})", "additionalProperties", true},
                        Case{R"({"type":"object","properties":{"a":{"type":"string"}},"additionalProperties":false})", "required", true},
                        Case{R"({"anyOf":[{"type":"string"},{"type":"string","maxLength":3}]})", "anyOf", false},
                        Case{R"({"$defs":{"n":{"type":"array","items":{"$ref":"#/$defs/n"}}},"$ref":"#/$defs/n"})", "$ref", false},
                        Case{R"({"$ref":"#/$defs/missing"})", "$ref", false},
                        Case{R"({"type":"date"})", "type", false},
                        Case{R"({"type":"array","items":[{"type":"string"}]})", "items", false},
                        Case{R"({"type":"array","uniqueItems":true})", "uniqueItems", false}}) {
    try {
      schema(c.schema, c.strict);
      ADD_FAILURE() << "accepted: " << c.schema;
    } catch (const SchemaError& e) {
      EXPECT_EQ(e.keyword, c.keyword) << c.schema << ": " << e.what();
      EXPECT_NE(std::string(e.what()).find(c.keyword), std::string::npos) << e.what();
    }
  }
  // Nesting beyond the frames.
  std::string deep = R"({"type":"integer"})";
  for (int i = 0; i < JsonState::kMaxDepth; ++i) deep = R"({"type":"array","items":)" + deep + "}";
  EXPECT_THROW(schema(deep), SchemaError);
  // $refs that fan out at every level (64^8 paths) compile once per definition.
  ojson defs = ojson::object();
  defs["d0"] = {{"type", "integer"}};
  for (int i = 1; i <= 8; ++i) {
    ojson props = ojson::object();
    for (int k = 0; k < 64; ++k) props["p" + std::to_string(k)] = {{"$ref", "#/$defs/d" + std::to_string(i - 1)}};
    defs["d" + std::to_string(i)] = {{"type", "object"}, {"properties", props}};
  }
  const auto t0 = std::chrono::steady_clock::now();
  JsonGrammar::from_schema({{"$defs", defs}, {"$ref", "#/$defs/d8"}}, false);
  EXPECT_LT(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(), 1.0);
}

// ---------------------------------------------------------------------------------------------------------------
// Token masks over a real vocabulary.

const tok::Tokenizer& tiny_r1() {
  static const tok::Tokenizer t = tok::Tokenizer::from_dir(std::string(DS_SOURCE_DIR) + "/models/tiny-r1");
  return t;
}
constexpr int64_t kTinyVocab = 448;  // tiny-R1's config vocab_size (the tokenizer has fewer)
constexpr int32_t kEos = 1;

std::shared_ptr<const TokenVocab> tiny_vocab() {
  static const auto v = std::make_shared<const TokenVocab>(tiny_r1(), kTinyVocab, std::vector<int32_t>{kEos});
  return v;
}

std::vector<int32_t> allowed_ids(JsonConstraint& c, int64_t V) {
  std::vector<float> logits(size_t(V), 0.0f);
  c.mask(logits.data(), V);
  std::vector<int32_t> out;
  for (int64_t i = 0; i < V; ++i)
    if (logits[size_t(i)] == 0.0f) out.push_back(int32_t(i));
  return out;
}

TEST(JsonConstraint, TrieMaskEqualsPerTokenCheck) {
  const auto v = tiny_vocab();
  const auto g = schema(kSchema, true);
  const std::string text = R"({"answer":12,"unit":"apples","ok":true,"tags":["ab")";
  JsonState s = g->start();
  std::vector<JsonState> scratch;
  for (size_t k = 0; k <= text.size(); ++k) {
    std::vector<uint8_t> ok(size_t(kTinyVocab), 0);
    v->allowed(*g, s, ok.data(), scratch);
    for (int32_t id = 0; id < kTinyVocab; ++id) {
      JsonState t = s;
      const bool want = !v->piece(id).empty() && g->accept(t, v->piece(id));
      ASSERT_EQ(ok[size_t(id)] != 0, want) << "after " << text.substr(0, k) << " token " << id;
    }
    if (k < text.size()) ASSERT_TRUE(g->accept(s, uint8_t(text[k])));
  }
}

TEST(JsonConstraint, EndOfSequenceOnlyWhenComplete) {
  const auto v = tiny_vocab();
  JsonConstraint c(JsonGrammar::any_object(), v, false);
  auto ids = allowed_ids(c, kTinyVocab);
  EXPECT_EQ(std::count(ids.begin(), ids.end(), kEos), 0);
  for (int32_t id : ids) {
    const std::string& p = v->piece(id);
    EXPECT_TRUE(p[0] == '{' || p[0] == ' ' || p[0] == '\n' || p[0] == '\t' || p[0] == '\r') << p;
  }
  for (const int32_t id : tiny_r1().encode("{\"a\":1}", false)) c.advance(id);
  EXPECT_EQ(allowed_ids(c, kTinyVocab), std::vector<int32_t>{kEos});
}

TEST(JsonConstraint, ReasoningFirstThenJson) {
  const auto v = tiny_vocab();
  ASSERT_GE(v->think_end(), 0);
  JsonConstraint c(JsonGrammar::any_object(), v, true);
  auto ids = allowed_ids(c, kTinyVocab);
  EXPECT_EQ(int64_t(ids.size()), kTinyVocab - 1);  // everything but the end of sequence
  for (const int32_t id : tiny_r1().encode("12+3=15", false)) c.advance(id);
  EXPECT_TRUE(c.in_reasoning());
  c.advance(v->think_end());
  EXPECT_FALSE(c.in_reasoning());
  ids = allowed_ids(c, kTinyVocab);
  EXPECT_LT(ids.size(), 20u);
  // A copy goes on independently (the scheduler clones one per sequence).
  auto copy = c.clone();
  c.advance(tiny_r1().encode("{", false)[0]);
  EXPECT_NE(allowed_ids(c, kTinyVocab), ids);
  EXPECT_EQ(allowed_ids(static_cast<JsonConstraint&>(*copy), kTinyVocab), ids);
}

size_t code_points(const std::string& s) {
  size_t n = 0;
  for (unsigned char ch : s) n += (ch & 0xC0) != 0x80;
  return n;
}

// Random tokens among the allowed ones until only the end is left: always JSON that fits the schema.
TEST(JsonConstraint, RandomWalksEndInValidJson) {
  const auto v = tiny_vocab();
  const auto g = schema(kSchema, true);
  std::mt19937 rng(7);
  for (int walk = 0; walk < 300; ++walk) {
    JsonConstraint c(g, v, false);
    std::string text;
    int steps = 0;
    while (true) {
      const auto ids = allowed_ids(c, kTinyVocab);
      ASSERT_FALSE(ids.empty());
      const int32_t id = ids[std::uniform_int_distribution<size_t>(0, ids.size() - 1)(rng)];
      if (id == kEos) break;
      text += v->piece(id);
      c.advance(id);
      ASSERT_LT(++steps, 2000) << text;
    }
    const auto j = nlohmann::json::parse(text, nullptr, false);
    ASSERT_FALSE(j.is_discarded()) << text;
    ASSERT_EQ(j.size(), 4u) << text;
    EXPECT_TRUE(j["answer"].is_number_integer()) << text;
    EXPECT_TRUE(j["unit"] == "apples" || j["unit"] == "pears") << text;
    EXPECT_TRUE(j["ok"].is_boolean()) << text;
    ASSERT_TRUE(j["tags"].is_array() && j["tags"].size() <= 3) << text;
    for (const auto& t : j["tags"]) EXPECT_TRUE(t.is_string() && code_points(t.get<std::string>()) <= 8) << text;
  }
}

// response_format parsing: the kinds, and a 400 naming what the schema uses that is not supported.
TEST(ResponseFormat, Parsing) {
  server::ParseContext pc;
  pc.json_vocab = tiny_vocab();
  auto parse = [&](const std::string& rf) {
    server::CompletionRequest r;
    server::parse_response_format(ojson::parse("{\"response_format\": " + rf + "}"), pc, r);
    return r;
  };
  EXPECT_EQ(parse(R"({"type":"text"})").gen.constraint, nullptr);
  EXPECT_NE(parse(R"({"type":"json_object"})").gen.constraint, nullptr);
  EXPECT_NE(parse(std::string(R"({"type":"json_schema","json_schema":{"name":"x","strict":true,"schema":)") + kSchema + "}}")
                .gen.constraint,
            nullptr);
  for (const char* bad : {R"("json")", R"({"type":"yaml"})", R"({"type":"json_schema"})",
                          R"({"type":"json_schema","json_schema":{"schema":1}})",
                          R"({"type":"json_schema","json_schema":{"strict":"yes","schema":{}}})"}) {
    try {
      parse(bad);
      ADD_FAILURE() << bad;
    } catch (const server::ApiError& e) {
      EXPECT_EQ(e.status, 400);
      EXPECT_EQ(e.param, "response_format");
    }
  }
  try {
    parse(R"({"type":"json_schema","json_schema":{"name":"x","schema":{"type":"object","properties":{"d":{"type":"string","format":"date"}}}}})");
    ADD_FAILURE();
  } catch (const server::ApiError& e) {
    EXPECT_EQ(e.param, "response_format");
    EXPECT_NE(std::string(e.what()).find("'format'"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("#/properties/d"), std::string::npos) << e.what();
  }
}

// The mask over DeepSeek-V3's 129,280 tokens (when the tokenizer is there): inside a string most of the trie is
// walked, between tokens little of it.
TEST(JsonConstraint, MaskTimeOnALargeVocabulary) {
  const std::string dir = std::string(DS_SOURCE_DIR) + "/.cache/tokenizer-deepseek-v3";
  if (!std::filesystem::exists(dir + "/tokenizer.json")) GTEST_SKIP() << "no " << dir;
  const auto t = tok::Tokenizer::from_dir(dir);
  const auto t0 = std::chrono::steady_clock::now();
  const auto v = std::make_shared<const TokenVocab>(t, 129280, std::vector<int32_t>{1});
  const auto t1 = std::chrono::steady_clock::now();
  JsonConstraint c(JsonGrammar::any_object(), v, false);
  std::vector<float> logits(129280);
  double ms[2];
  for (int k = 0; k < 2; ++k) {
    if (k == 1)
      for (const int32_t id : t.encode("{\"key\": \"some text", false)) c.advance(id);
    const auto a = std::chrono::steady_clock::now();
    for (int r = 0; r < 5; ++r) c.mask(logits.data(), 129280);
    ms[k] = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - a).count() / 5;
  }
  std::printf("vocab trie built in %.0f ms; mask %.2f ms at the start, %.2f ms inside a string\n",
              std::chrono::duration<double, std::milli>(t1 - t0).count(), ms[0], ms[1]);
  EXPECT_LT(ms[1], 200.0);

  // This vocabulary has no <think> token: the reasoning ends where the decoded text spells </think>, and what
  // follows in the same token already counts.
  EXPECT_LT(v->think_end(), 0);
  JsonConstraint r(JsonGrammar::any_object(), v, true);
  for (const int32_t id : t.encode("so 2+2=4</think>\n\n{\"a\"", false)) r.advance(id);
  EXPECT_FALSE(r.in_reasoning());
  std::fill(logits.begin(), logits.end(), 0.0f);
  r.mask(logits.data(), 129280);
  EXPECT_EQ(logits[size_t(t.encode(":", false)[0])], 0.0f);
  EXPECT_EQ(logits[size_t(t.encode("}", false)[0])], -INFINITY);
}

}  // namespace
}  // namespace ds::test
