// SPDX-License-Identifier: MIT
// DeepSeek tool-call parsing at the parser level (random-weight test models never emit tool calls): both spellings
// (V3 with a ```json fence, V3.1 plain), several calls, text before the calls, cut-off calls and junk.
#include <gtest/gtest.h>

#include <string>

#include "server/openai.h"

namespace ds::test {
namespace {

using server::parse_tool_calls;

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

}  // namespace
}  // namespace ds::test
