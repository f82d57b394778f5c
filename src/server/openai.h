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

struct ParseContext {
  const tok::Tokenizer* tok = nullptr;
  const tok::ChatTemplate* tmpl = nullptr;  // null: no chat template (chat endpoint answers 400)
  std::string model_name;
  int64_t vocab = 0;
  int64_t ctx = 0;
  Limits limits;
  Defaults defaults;
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
  bool tools = false;            // tools offered: parse DeepSeek tool calls from the output
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
CompletionRequest parse_chat(const json& body, const ParseContext& c);
CompletionRequest parse_completion(const json& body, const ParseContext& c);

struct ParsedToolCall {
  std::string name, arguments;
  bool complete = false;  // its <｜tool▁call▁end｜> was seen (false: the output stopped inside the call)
};
extern const char* const kToolCallsBegin;
// Parses DeepSeek tool-call text (V3: "function<｜tool▁sep｜>NAME\n```json\nARGS\n```", V3.1: "NAME<｜tool▁sep｜>ARGS")
// starting at the tool-calls-begin marker. Returns an empty list when nothing parses. Arguments are returned as the
// model wrote them (OpenAI's `arguments` is a string the client must validate).
std::vector<ParsedToolCall> parse_tool_calls(const std::string& text);

}  // namespace ds::server
