// SPDX-License-Identifier: MIT
// OpenAI request parsing and validation (chat completions, completions), tool-call parsing, and the error object.
// Every rejection is an ApiError with an HTTP status and an OpenAI-style body; messages name the parameter and never
// echo request content.
#pragma once
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "runtime/scheduler.h"
#include "server/json_constraint.h"
#include "tokenizer/chat_format.h"
#include "tokenizer/chat_template.h"
#include "tokenizer/tokenizer.h"

namespace ds::server {

using json = nlohmann::json;

struct ApiError : std::runtime_error {
  int status;
  std::string type, param, code;
  ApiError(int status_, std::string message, std::string param_ = {}, std::string code_ = {},
           std::string type_ = "invalid_request_error")
      : std::runtime_error(std::move(message)), status(status_), type(std::move(type_)), param(std::move(param_)),
        code(std::move(code_)) {}
};

// Text through the model's tokenizer: its failure (a tokenizer.json regex over its time budget) becomes a 400
// `tokenizer_error` naming the reason, not a 500.
void encode_text(const tok::Tokenizer& tok, std::string_view text, bool parse_special, std::vector<int32_t>& ids,
                 const std::string& param);

json error_body(const std::string& message, const std::string& type, const std::string& param = {},
                const std::string& code = {});
// Serialises with invalid UTF-8 replaced by U+FFFD (never throws on model output).
std::string dump(const json& j);

struct Limits {
  int64_t max_tokens = 4096;     // per choice
  int max_n = 8;
  size_t max_prompts = 16;       // prompts in one /v1/completions list
  int max_top_logprobs = 20;
  int max_stop = 16;
  size_t max_stop_bytes = 256;
  size_t max_messages = 4096;
  size_t max_tools = 128;
  int max_json_depth = 64;
};

struct Defaults {
  float temperature = 0.6f;
  float top_p = 0.95f;
};

// How a chat template's model writes tool calls, and whether the template itself renders the `tools` schemas.
enum class ToolFormat {
  DeepSeekV3,   // <｜tool▁calls▁begin｜><｜tool▁call▁begin｜>function<｜tool▁sep｜>NAME\n```json\nARGS\n```<｜tool▁call▁end｜>…
  DeepSeekV31,  // <｜tool▁calls▁begin｜><｜tool▁call▁begin｜>NAME<｜tool▁sep｜>ARGS<｜tool▁call▁end｜>…
  Hermes,       // <tool_call>\n{"name": NAME, "arguments": ARGS}\n</tool_call> (Qwen3)
  DeepSeekV32,  // \n\n<｜DSML｜function_calls>\n<｜DSML｜invoke name="NAME">\n<｜DSML｜parameter name="K" string="true|false">V…
};
struct ToolSupport {
  ToolFormat format = ToolFormat::DeepSeekV31;
  bool renders_tools = false;  // false: the server describes the tools in the system prompt (tools_system_prompt)
};
// From the template: Hermes when it writes <tool_call>, DeepSeek V3 when it fences arguments in ```json, else V3.1;
// renders_tools when rendering a conversation with a probe tool puts the tool's name into the prompt.
ToolSupport tool_support(const tok::ChatTemplate& tmpl);
// The template's, or for the V3.2 encoder DeepSeekV32 with renders_tools (its system prompt describes the tools).
ToolSupport tool_support(const tok::ChatFormat& fmt);
// The text added to the system prompt for templates that do not render tools (docs/SERVER.md quotes it): a header,
// each tool's OpenAI function object as one line of JSON, and the call format of `format`.
std::string tools_system_prompt(const json& tools, ToolFormat format);

struct ParseContext {
  const tok::Tokenizer* tok = nullptr;
  const tok::ChatFormat* fmt = nullptr;     // null: no chat format (chat endpoint answers 400)
  ToolSupport tools;                         // of fmt
  std::string model_name;
  int64_t vocab = 0;
  int64_t ctx = 0;
  Limits limits;
  Defaults defaults;
  std::shared_ptr<const TokenVocab> json_vocab;  // response_format's constraints (null: response_format refused)
};

struct CompletionRequest {
  struct Prompt {
    std::vector<int32_t> ids;
    int64_t max_tokens = 0;  // the request's max_tokens, else what the context leaves (capped by the limit)
    std::string echo;        // completions with echo: the text each of its choices starts with
  };
  bool chat = false;
  std::vector<Prompt> prompts;  // chat: one; completions: one per prompt of a list (n choices each)
  bool opens_reasoning = false;  // the rendered prompt leaves the model inside <think>
  bool tools = false;            // tools offered: parse tool calls (tool_format) from the output
  ToolFormat tool_format = ToolFormat::DeepSeekV31;
  std::string prompt_text;       // chat: the rendered prompt (POST /apply-template returns it)
  rt::GenParams gen;  // max_tokens: see Prompt
  bool seed_given = false;
  int n = 1;
  bool stream = false, include_usage = false;
  bool logprobs = false;
  int top_logprobs = 0;
  std::vector<std::string> stop;
};

// Parses a request body (already size-checked). Throws ApiError.
json parse_body(const std::string& body, int max_depth);
// `ordered`: the same body parsed with its keys in order, when the format shows JSON the caller wrote (the V3.2
// encoder prints `tools` and a json_schema response_format in the caller's key order; without it they come sorted).
CompletionRequest parse_chat(const json& body, const ParseContext& c, const nlohmann::ordered_json* ordered = nullptr);
CompletionRequest parse_completion(const json& body, const ParseContext& c);
// `response_format` of either endpoint, from the body parsed with its keys in order (a schema's properties are
// generated in the order given): text (nothing to do), json_object or json_schema {name, schema, strict} set
// r.gen.constraint (after the reasoning when r.opens_reasoning). A schema the grammar cannot enforce is a 400 whose
// message names the keyword and where it is.
void parse_response_format(const nlohmann::ordered_json& body, const ParseContext& c, CompletionRequest& r);

struct ParsedToolCall {
  std::string name, arguments;
  bool complete = false;  // its end marker was seen (false: the output stopped inside the call)
};
extern const char* const kToolCallsBegin;
// The text that starts the tool calls of `format` (content before it streams, from it on it is held back).
const char* tool_calls_marker(ToolFormat format);
// Where the tool calls start in `content` (npos: not yet). DeepSeekV32: at "\n\n<｜DSML｜function_calls" as DeepSeek's
// parser reads it, or at a bare "<｜DSML｜function_calls".
size_t tool_calls_start(const std::string& content, ToolFormat format);
// How much of `content` may be streamed as content: up to the tool calls' start, and short of a suffix that may still
// grow into it.
size_t tool_calls_safe_end(const std::string& content, ToolFormat format);
// Parses DeepSeek tool-call text (V3: "function<｜tool▁sep｜>NAME\n```json\nARGS\n```", V3.1: "NAME<｜tool▁sep｜>ARGS")
// starting at the tool-calls-begin marker. Returns an empty list when nothing parses. Arguments are returned as the
// model wrote them (OpenAI's `arguments` is a string the client must validate).
std::vector<ParsedToolCall> parse_tool_calls(const std::string& text);
// Parses Hermes-style calls (Qwen3): <tool_call>\n{"name": ..., "arguments": {...}}\n</tool_call>, repeated. A call
// whose JSON does not parse (or has no string name) is incomplete, so the output stays text. Object arguments are
// re-serialised compactly in the model's key order; string arguments are returned as written.
std::vector<ParsedToolCall> parse_hermes_tool_calls(const std::string& text);
// Parses DeepSeek-V3.2's DSML block (tok::dsv32::parse_function_calls): string parameters quoted, others as written.
// A block that is cut off or malformed gives one incomplete call, so the output stays text.
std::vector<ParsedToolCall> parse_dsml_tool_calls(const std::string& text);
// The parser of `format`, over text that starts at its marker (tool_calls_start).
std::vector<ParsedToolCall> parse_tool_calls(const std::string& text, ToolFormat format);

}  // namespace ds::server
