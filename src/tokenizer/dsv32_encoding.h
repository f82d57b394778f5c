// SPDX-License-Identifier: MIT
// DeepSeek-V3.2's chat format. V3.2 ships no Jinja template: its model folder carries a Python encoder,
// encoding/encoding_dsv32.py (encode_messages, parse_message_from_completion_text), and this is that encoder and its
// output parser in C++, byte for byte (tests/fixtures/dsv32_encoding: goldens made by DeepSeek's file).
//
//   system     content [+ "\n\n## Tools…" DSML instructions + one JSON schema per tool] [+ "\n\n## Response Format…"]
//   developer  "<｜User｜>" [tools] [response format] "\n\n# The user's message is: " content "<｜Assistant｜>" + think tag
//   user       "<｜User｜>" content "<｜Assistant｜>" + "<think>" (the last user turn, thinking mode) or "</think>"
//   assistant  [reasoning "</think>": thinking mode, after the last user turn] content
//              ["\n\n<｜DSML｜function_calls>\n" invokes "\n</｜DSML｜function_calls>"] "<｜end▁of▁sentence｜>"
//   tool       "\n\n<function_results>" (first result) "\n<result>" content "</result>"
//              "\n</function_results>\n\n" + "<think>" / "</think>" (after the last result of the calls)
// A call's parameters are `<｜DSML｜parameter name="K" string="true|false">V</｜DSML｜parameter>`: strings raw, other
// values as JSON. JSON (tool schemas, non-string values) is written as Python's json.dumps(ensure_ascii=False) does:
// ", " and ": " separators, the caller's key order, non-ASCII as is, floats as Python's repr.
// Limits: arguments are read with nlohmann's parser, so integers beyond 64 bits become doubles and NaN/Infinity
// literals are refused (Python's json.loads keeps/accepts them); content must be a string or null.
#pragma once
#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "tokenizer/chat_template.h"

namespace ds::tok::dsv32 {

inline constexpr std::string_view kBos = "<｜begin▁of▁sentence｜>";
inline constexpr std::string_view kEos = "<｜end▁of▁sentence｜>";
inline constexpr std::string_view kThinkStart = "<think>", kThinkEnd = "</think>";
// Where a completion's tool calls start: the parser reads content up to "\n\n" + this.
inline constexpr std::string_view kFunctionCalls = "<｜DSML｜function_calls";

// encode_messages' arguments.
struct EncodeOptions {
  bool thinking = false;       // thinking_mode "thinking"; false: "chat"
  bool drop_thinking = true;   // reasoning of assistant turns before the last user turn is removed (never rendered)
  bool add_bos = true;         // add_default_bos_token (only without context)
  size_t context = 0;          // the first `context` messages are context: they decide indices but are not rendered
};

// The prompt for `messages` (an array of OpenAI-style objects: role, content, reasoning_content, tool_calls, and on
// system/developer messages `tools` and `response_format`). Caller text (contents, reasoning, tool names, argument
// keys and values, schemas, results) is marked in data_spans. Throws ds::Error wherever the Python encoder raises
// (an unknown role, a tool result without a call, an assistant turn in thinking mode with neither reasoning nor
// calls, arguments that are not a JSON object, ...).
RenderedPrompt encode_messages(const nlohmann::ordered_json& messages, const EncodeOptions& opt = {});

// Python's json.dumps(value, ensure_ascii=False).
std::string to_json(const nlohmann::ordered_json& value);

// parse_message_from_completion_text: a completion (what the model wrote after the prompt, with its end-of-sentence
// token) split into reasoning (thinking mode: up to "</think>"), content, and tool calls whose arguments are the JSON
// text the parser builds (string parameters quoted, others as written). Strict, as DeepSeek's parser: malformed text
// throws ds::Error carrying the assertion's message ("Invalid thinking format", "Tool call format error", ...).
struct ParsedMessage {
  std::string content, reasoning;
  std::vector<ToolCall> tool_calls;  // id empty
};
ParsedMessage parse_completion(std::string_view text, bool thinking);

// The tool calls of a function_calls block: `text` starts at (or a little before) its "<｜DSML｜function_calls".
// `complete`: the block's closing tag was read (false: the text stops inside it). Throws ds::Error on malformed text.
struct FunctionCalls {
  std::vector<ToolCall> calls;
  bool complete = false;
};
FunctionCalls parse_function_calls(std::string_view text);

}  // namespace ds::tok::dsv32
