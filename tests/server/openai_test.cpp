// SPDX-License-Identifier: MIT
// Tool-call parsing at the parser level (random-weight test models never emit tool calls): DeepSeek's two spellings
// (V3 with a ```json fence, V3.1 plain) and Hermes-style <tool_call> JSON (Qwen3), several calls, text before the
// calls, cut-off calls and junk; which format and tool rendering each shipped template gets; the tools system prompt.
#include <gtest/gtest.h>

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

}  // namespace
}  // namespace ds::test
