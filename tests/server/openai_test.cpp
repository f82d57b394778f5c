// SPDX-License-Identifier: MIT
// Tool-call parsing at the parser level (random-weight test models never emit tool calls): DeepSeek's two spellings
// (V3 with a ```json fence, V3.1 plain) and Hermes-style <tool_call> JSON (Qwen3), several calls, text before the
// calls, cut-off calls and junk; which format and tool rendering each shipped template gets; the tools system prompt.
#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "server/openai.h"

namespace ds::test {
namespace {

using server::parse_hermes_tool_calls;
using server::parse_tool_calls;
using server::ToolFormat;

const std::string B = "<｜tool▁calls▁begin｜>", CB = "<｜tool▁call▁begin｜>", SEP = "<｜tool▁sep｜>",
                  CE = "<｜tool▁call▁end｜>", E = "<｜tool▁calls▁end｜>";

TEST(ToolCalls, V3FencedJson) {
  const auto c = parse_tool_calls(B + CB + "function" + SEP + "get_weather\n```json\n{\"city\": \"Oslo\"}\n```" + CE + E);
  ASSERT_EQ(c.size(), 1u);
  EXPECT_EQ(c[0].name, "get_weather");
  EXPECT_EQ(c[0].arguments, "{\"city\": \"Oslo\"}");
  EXPECT_TRUE(c[0].complete);
}

TEST(ToolCalls, V31PlainAndSeveralCalls) {
  const auto c = parse_tool_calls("I will check. " + B + CB + "get_weather" + SEP + "{\"city\":\"Oslo\"}" + CE + CB +
                                  "get_time" + SEP + "{}" + CE + E + "<｜end▁of▁sentence｜>");
  ASSERT_EQ(c.size(), 2u);
  EXPECT_EQ(c[0].name, "get_weather");
  EXPECT_EQ(c[0].arguments, "{\"city\":\"Oslo\"}");
  EXPECT_EQ(c[1].name, "get_time");
  EXPECT_EQ(c[1].arguments, "{}");
  EXPECT_TRUE(c[0].complete && c[1].complete);
}

TEST(ToolCalls, CutOffCallIsIncomplete) {
  const auto c = parse_tool_calls(B + CB + "get_weather" + SEP + "{\"city\":");
  ASSERT_EQ(c.size(), 1u);
  EXPECT_FALSE(c[0].complete);
  const auto v3 = parse_tool_calls(B + CB + "function" + SEP + "f\n```json\n{\"a\": 1");
  ASSERT_EQ(v3.size(), 1u);
  EXPECT_FALSE(v3[0].complete);
}

TEST(ToolCalls, NothingToParse) {
  EXPECT_TRUE(parse_tool_calls("plain text").empty());
  EXPECT_TRUE(parse_tool_calls(CB + "f" + SEP + "{}" + CE).empty()) << "no calls-begin marker";
  EXPECT_TRUE(parse_tool_calls(B + CB + "no separator" + CE).empty());
  EXPECT_TRUE(parse_tool_calls(B + CB + SEP + "{}" + CE).empty()) << "empty name";
  EXPECT_TRUE(parse_tool_calls(B).empty());
}

TEST(HermesToolCalls, OneAndSeveralCalls) {
  const auto c = parse_hermes_tool_calls(
      "<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Oslo\", \"unit\": \"c\"}}\n</tool_call>\n"
      "<tool_call>\n{\"name\": \"get_time\", \"arguments\": \"{}\"}\n</tool_call>");
  ASSERT_EQ(c.size(), 2u);
  EXPECT_EQ(c[0].name, "get_weather");
  EXPECT_EQ(c[0].arguments, "{\"city\":\"Oslo\",\"unit\":\"c\"}") << "compact, in the model's key order";
  EXPECT_EQ(c[1].name, "get_time");
  EXPECT_EQ(c[1].arguments, "{}") << "string arguments as written";
  EXPECT_TRUE(c[0].complete && c[1].complete);
  const auto no_args = parse_hermes_tool_calls("<tool_call>{\"name\": \"ping\"}</tool_call>");
  ASSERT_EQ(no_args.size(), 1u);
  EXPECT_EQ(no_args[0].arguments, "{}");
  // Through the dispatch, from the format's marker.
  const std::string text = "Let me look. <tool_call>\n{\"name\": \"f\", \"arguments\": {}}\n</tool_call>";
  const auto d = parse_tool_calls(text.substr(text.find(server::tool_calls_marker(ToolFormat::Hermes))), ToolFormat::Hermes);
  ASSERT_EQ(d.size(), 1u);
  EXPECT_EQ(d[0].name, "f");
}

TEST(HermesToolCalls, CutOffOrBrokenCallsAreIncomplete) {
  const auto cut = parse_hermes_tool_calls("<tool_call>\n{\"name\": \"get_weather\", \"argu");
  ASSERT_EQ(cut.size(), 1u);
  EXPECT_FALSE(cut[0].complete);
  const auto unclosed = parse_hermes_tool_calls("<tool_call>\n{\"name\": \"f\", \"arguments\": {}}\n");
  ASSERT_EQ(unclosed.size(), 1u);
  EXPECT_FALSE(unclosed[0].complete) << "no </tool_call> yet";
  for (const std::string& bad : std::vector<std::string>{"<tool_call>not json</tool_call>", "<tool_call>{\"arguments\": {}}</tool_call>",
                                "<tool_call>{\"name\": 3}</tool_call>", "<tool_call>[1]</tool_call>",
                                "<tool_call>" + std::string(100000, '[') + "</tool_call>"}) {
    const auto c = parse_hermes_tool_calls(bad);
    ASSERT_EQ(c.size(), 1u);
    EXPECT_FALSE(c[0].complete) << bad.substr(0, 40);
  }
  EXPECT_TRUE(parse_hermes_tool_calls("plain text").empty());
  EXPECT_TRUE(parse_tool_calls("<tool_call>{\"name\": \"f\"}</tool_call>", ToolFormat::DeepSeekV31).empty());
}

std::string read_template(const std::string& name) {
  std::ifstream f(std::string(DS_SOURCE_DIR) + "/tests/fixtures/tokenizer/templates/" + name);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

// Every shipped template: which call format it gets and whether it renders `tools` itself (else the system prompt
// carries them).
TEST(ToolSupport, ShippedTemplates) {
  struct Case {
    const char* file;
    ToolFormat format;
    bool renders;
  };
  for (const Case& c : {Case{"deepseek-v3.jinja", ToolFormat::DeepSeekV3, false},
                        Case{"deepseek-r1.jinja", ToolFormat::DeepSeekV3, false},
                        Case{"deepseek-r1-0528.jinja", ToolFormat::DeepSeekV3, false},
                        Case{"deepseek-v3.1.jinja", ToolFormat::DeepSeekV31, false},
                        Case{"deepseek-r1-distill-qwen.jinja", ToolFormat::DeepSeekV3, false},
                        Case{"deepseek-r1-distill-llama.jinja", ToolFormat::DeepSeekV3, false},
                        Case{"llamacpp-deepseek-r1-distill-qwen-32b.jinja", ToolFormat::DeepSeekV3, false},
                        Case{"qwen3.jinja", ToolFormat::Hermes, true}}) {
    const std::string src = read_template(c.file);
    ASSERT_FALSE(src.empty()) << c.file;
    const auto s = server::tool_support(tok::ChatTemplate(src, "<｜begin▁of▁sentence｜>", "<｜end▁of▁sentence｜>"));
    EXPECT_EQ(int(s.format), int(c.format)) << c.file;
    EXPECT_EQ(s.renders_tools, c.renders) << c.file;
  }
}

// The exact text docs/SERVER.md quotes.
TEST(ToolsSystemPrompt, ExactText) {
  const server::json tools = server::json::parse(
      R"([{"type": "function", "function": {"name": "get_weather", "description": "Weather of a city",
           "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}},
          {"type": "function", "function": {"name": "get_time"}}])");
  const std::string head =
      "## Tools\nYou can call these tools (one JSON object per line: name, description, parameters):\n"
      "{\"description\":\"Weather of a city\",\"name\":\"get_weather\",\"parameters\":{\"properties\":{\"city\":"
      "{\"type\":\"string\"}},\"type\":\"object\"}}\n{\"name\":\"get_time\"}\n\n"
      "To call tools, answer in this format, where NAME is a tool's name and ARGUMENTS a JSON object that follows its "
      "parameters:\n";
  const std::string ds_tail = "\nFor several calls, write one " + CB + "…" + CE + " after another before " + E + ".";
  EXPECT_EQ(server::tools_system_prompt(tools, ToolFormat::DeepSeekV31),
            head + B + CB + "NAME" + SEP + "ARGUMENTS" + CE + E + ds_tail);
  EXPECT_EQ(server::tools_system_prompt(tools, ToolFormat::DeepSeekV3),
            head + B + CB + "function" + SEP + "NAME\n```json\nARGUMENTS\n```" + CE + E + ds_tail);
  EXPECT_EQ(server::tools_system_prompt(tools, ToolFormat::Hermes),
            head + "<tool_call>\n{\"name\": NAME, \"arguments\": ARGUMENTS}\n</tool_call>\n"
                   "For several calls, write one <tool_call> block after another.");
}

// ---- DeepSeek-V3.2 (DSML) -----------------------------------------------------------------------------------------

const nlohmann::ordered_json& dsv32_goldens() {
  static const auto g = nlohmann::ordered_json::parse(
      std::ifstream(std::string(DS_SOURCE_DIR) + "/tests/fixtures/dsv32_encoding/goldens.json"));
  return g;
}

const tok::Tokenizer& v3_tokenizer() {
  static const tok::Tokenizer t = tok::Tokenizer::from_dir(std::string(DS_SOURCE_DIR) + "/.cache/tokenizer-deepseek-v3");
  return t;
}

TEST(ToolSupport, Dsv32Encoder) {
  const auto s = server::tool_support(tok::ChatFormat::dsv32());
  EXPECT_EQ(int(s.format), int(ToolFormat::DeepSeekV32));
  EXPECT_TRUE(s.renders_tools) << "the encoder's system prompt describes the tools";
}

// Every completion of the parser goldens that DeepSeek's parser accepts with tool calls (chat mode: the text is all
// content and calls), as the server sees it (no end-of-sentence token): the calls come back as DeepSeek's parser
// returns them, the content is the text before the block, and streaming the text byte by byte never releases
// anything past that content.
TEST(ToolCalls, Dsv32GoldenCompletionsParsedAndHeldBack) {
  const std::string eos = "<｜end▁of▁sentence｜>";
  size_t checked = 0;
  for (const auto& r : dsv32_goldens().at("parse")) {
    if (r.contains("error") || r.at("thinking_mode") != "chat" || r.at("message").at("tool_calls").empty()) continue;
    std::string text = r.at("text").get<std::string>();
    if (text.size() >= eos.size() && text.compare(text.size() - eos.size(), eos.size(), eos) == 0)
      text.resize(text.size() - eos.size());
    const std::string name = r.at("name").get<std::string>();
    const std::string content = r.at("message").at("content").get<std::string>();
    const size_t p = server::tool_calls_start(text, ToolFormat::DeepSeekV32);
    ASSERT_EQ(p, content.size()) << name;
    const auto calls = parse_tool_calls(text.substr(p), ToolFormat::DeepSeekV32);
    const auto& want = r.at("message").at("tool_calls");
    ASSERT_EQ(calls.size(), want.size()) << name;
    for (size_t i = 0; i < calls.size(); ++i) {
      EXPECT_EQ(calls[i].name, want[i]["function"]["name"].get<std::string>()) << name;
      EXPECT_EQ(calls[i].arguments, want[i]["function"]["arguments"].get<std::string>()) << name;
      EXPECT_TRUE(calls[i].complete) << name;
    }
    size_t sent = 0;
    for (size_t n = 0; n <= text.size(); ++n) {
      const std::string prefix = text.substr(0, n);
      sent = std::max(sent, server::tool_calls_safe_end(prefix, ToolFormat::DeepSeekV32));
      ASSERT_LE(sent, content.size()) << name << ": released DSML markup after " << n << " bytes";
      ASSERT_EQ(prefix.substr(0, sent), content.substr(0, sent)) << name;
      // A prefix cut inside the block never yields complete calls.
      if (n < text.size() && n > p) {
        const auto cut = parse_tool_calls(prefix.substr(p), ToolFormat::DeepSeekV32);
        EXPECT_FALSE(!cut.empty() && std::all_of(cut.begin(), cut.end(), [](const auto& c) { return c.complete; }))
            << name << " cut at " << n;
      }
    }
    EXPECT_EQ(sent, content.size()) << name << ": the whole content is released";
    ++checked;
  }
  EXPECT_GE(checked, 10u);
}

TEST(ToolCalls, Dsv32LenientAndMalformed) {
  const std::string inv = "<｜DSML｜invoke name=\"f\">\n<｜DSML｜parameter name=\"a\" string=\"false\">[1]</｜DSML｜parameter>\n"
                          "</｜DSML｜invoke>\n</｜DSML｜function_calls>";
  // Without the blank line DeepSeek's parser expects, the block still starts the calls.
  const std::string bare = "Sure.<｜DSML｜function_calls>\n" + inv;
  const size_t p = server::tool_calls_start(bare, ToolFormat::DeepSeekV32);
  ASSERT_EQ(p, 5u);
  const auto c = parse_tool_calls(bare.substr(p), ToolFormat::DeepSeekV32);
  ASSERT_EQ(c.size(), 1u);
  EXPECT_EQ(c[0].arguments, "{\"a\": [1]}");
  EXPECT_TRUE(c[0].complete);
  EXPECT_EQ(server::tool_calls_safe_end("Sure.<｜DSML｜func", ToolFormat::DeepSeekV32), 5u);
  EXPECT_EQ(server::tool_calls_safe_end("Sure.\n", ToolFormat::DeepSeekV32), 5u);
  EXPECT_EQ(server::tool_calls_safe_end("Sure.\n\nMore", ToolFormat::DeepSeekV32), 11u);
  // Malformed blocks are one incomplete call: the output stays text.
  for (const std::string& bad : std::vector<std::string>{std::string("\n\n<｜DSML｜function_calls>") + inv,  // no "\n"
                                 "\n\n<｜DSML｜function_calls>\n<｜DSML｜invoke nam=\"f\">\n</｜DSML｜invoke>\n",
                                 "\n\n<｜DSML｜function_calls>\n<｜DSML｜invoke name=\"f\">\n<｜DSML｜parameter name=\"a\" "
                                 "string=\"maybe\">1</｜DSML｜parameter>\n</｜DSML｜invoke>\n</｜DSML｜function_calls>"}) {
    const auto m = parse_tool_calls(bad, ToolFormat::DeepSeekV32);
    ASSERT_EQ(m.size(), 1u) << bad;
    EXPECT_FALSE(m[0].complete) << bad;
  }
  EXPECT_TRUE(parse_tool_calls("\n\n<｜DSML｜function_calls>\n</｜DSML｜function_calls>", ToolFormat::DeepSeekV32).empty());
}

// The request -> prompt path for the V3.2 encoder: parse_chat over the goldens' server requests gives the prompt
// DeepSeek's encoder makes of them (tools in the caller's key order), tokenized with special tokens only from the
// encoder's own text; tools switch on DSML parsing.
TEST(ParseChat, Dsv32RequestsRenderAsTheOfficialEncoder) {
  const tok::ChatFormat fmt = tok::ChatFormat::dsv32();
  server::ParseContext c;
  c.tok = &v3_tokenizer();
  c.fmt = &fmt;
  c.tools = server::tool_support(fmt);
  c.model_name = "m";
  c.vocab = 129280;
  c.ctx = 8192;
  for (const auto& row : dsv32_goldens().at("server")) {
    const std::string name = row.at("name").get<std::string>();
    const nlohmann::ordered_json& req = row.at("request");
    const server::json b = server::json::parse(req.dump());
    const auto r = server::parse_chat(b, c, &req);
    EXPECT_EQ(r.prompt_text, row.at("prompt").get<std::string>()) << name;
    const bool tools = req.contains("tools") && req.value("tool_choice", "auto") != "none";
    EXPECT_EQ(r.tools, tools) << name;
    if (tools) EXPECT_EQ(int(r.tool_format), int(ToolFormat::DeepSeekV32)) << name;
    EXPECT_EQ(r.opens_reasoning, req.contains("chat_template_kwargs")) << name << ": thinking mode ends in <think>";
    const int32_t eos = v3_tokenizer().token_to_id("<｜end▁of▁sentence｜>");
    const auto n_eos = std::count(r.prompts[0].ids.begin(), r.prompts[0].ids.end(), eos);
    size_t scaffold_eos = 0;  // one per assistant turn
    for (const auto& m : req.at("messages")) scaffold_eos += m.at("role") == "assistant";
    EXPECT_EQ(size_t(n_eos), scaffold_eos) << name << ": content text never becomes <｜end▁of▁sentence｜>";
  }
  // Without the ordered body the tools come key-sorted (still the official encoder's output for sorted input).
  const auto& row = dsv32_goldens().at("server").at(3);
  ASSERT_EQ(row.at("name"), "tools_with_system");
  const auto r = server::parse_chat(server::json::parse(row.at("request").dump()), c);
  EXPECT_NE(r.prompt_text, row.at("prompt").get<std::string>());
  EXPECT_NE(r.prompt_text.find("{\"description\": \"Current weather\", \"name\": \"get_weather\""), std::string::npos);
  // The V3.2 encoder's refusals are 400 template_error naming the reason.
  const auto orphan = server::json::parse(R"({"messages": [{"role": "user", "content": "u"},
      {"role": "assistant", "content": "a"}, {"role": "tool", "content": "t"}]})");
  try {
    server::parse_chat(orphan, c);
    ADD_FAILURE() << "a tool result without a call must be refused";
  } catch (const server::ApiError& e) {
    EXPECT_EQ(e.status, 400);
    EXPECT_EQ(e.code, "template_error");
    EXPECT_NE(std::string(e.what()).find("DeepSeek-V3.2"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace ds::test
