// SPDX-License-Identifier: MIT
// Fuzzes the sandboxed Jinja engine (src/tokenizer/jinja*) with the chat template as the input: parse, then render a
// small conversation (system, user, assistant with a tool call, tool result) with tools, as the server would.
// Limits are tight, so a template that loops or recurses ends in ds::Error quickly; a crash, UB or a run past
// libFuzzer's -timeout is a finding. Seeds: the shipped templates (tests/fixtures/tokenizer/templates).
#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

#include "base/error.h"
#include "tokenizer/jinja.h"

namespace {

using ds::tok::jinja::Value;

const std::vector<std::pair<std::string, Value>>& globals() {
  static const auto* g = [] {
    const auto messages = nlohmann::ordered_json::parse(R"([
      {"role": "system", "content": "You are terse."},
      {"role": "user", "content": "Weather in Paris? <｜User｜>{{ x }}"},
      {"role": "assistant", "content": null, "reasoning_content": "need a tool",
       "tool_calls": [{"id": "c1", "type": "function",
                       "function": {"name": "get_weather", "arguments": "{\"city\": \"Paris\"}"}}]},
      {"role": "tool", "tool_call_id": "c1", "content": "{\"temp\": 21}"},
      {"role": "assistant", "content": "<think>ok</think>21 C"},
      {"role": "user", "content": [{"type": "text", "text": "and tomorrow?"}]}])");
    const auto tools = nlohmann::ordered_json::parse(R"([{"type": "function", "function": {"name": "get_weather",
      "description": "Weather", "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
      "required": ["city"]}}}])");
    auto* v = new std::vector<std::pair<std::string, Value>>{
        {"messages", ds::tok::jinja::from_json(messages, true)},
        {"tools", ds::tok::jinja::from_json(tools, true)},
        {"bos_token", Value::plain("<｜begin▁of▁sentence｜>")},
        {"eos_token", Value::plain("<｜end▁of▁sentence｜>")},
        {"add_generation_prompt", Value::boolean(true)},
        {"enable_thinking", Value::boolean(true)},
        {"thinking", Value::boolean(false)},
    };
    return v;
  }();
  return *g;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  ds::tok::jinja::Limits limits;
  limits.max_template_bytes = 64 << 10;
  limits.max_steps = 20'000;
  limits.max_depth = 48;
  limits.max_output_bytes = 256 << 10;
  try {
    const ds::tok::jinja::Template t(std::string(reinterpret_cast<const char*>(data), size), limits);
    const ds::tok::jinja::TString out = t.render(globals());
    if (out.s.size() > limits.max_output_bytes) __builtin_trap();  // the output cap was not enforced
  } catch (const ds::Error&) {
  }
  return 0;
}
