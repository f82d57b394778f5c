// SPDX-License-Identifier: MIT
// Chat templates: renders a conversation exactly as Hugging Face apply_chat_template does (the model's own Jinja
// template, run by the sandboxed interpreter in jinja.h), and tokenizes the result so that special tokens are
// parsed only in the template's scaffolding, never inside message content (no control-token injection).
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "tokenizer/jinja.h"
#include "tokenizer/tokenizer.h"

namespace ds::tok {

struct ToolCall {
  std::string id;
  std::string name;
  std::string arguments;  // JSON text, as the OpenAI API carries it
};

// One chat message (OpenAI shape). Converted to JSON for the template; absent fields stay undefined.
struct ChatMessage {
  std::string role;                    // system | user | assistant | tool
  std::optional<std::string> content;  // nullopt -> null (assistant turns that only call tools)
  std::vector<ToolCall> tool_calls;
  std::optional<std::string> tool_call_id;
  std::optional<std::string> reasoning_content;
  bool prefix = false;                 // V3.1: continue this assistant message
  nlohmann::json to_json() const;
};

// Tool schemas and extra variables are ordered JSON: templates print them with tojson (Qwen3 lists the tools), and
// Hugging Face keeps the caller's key order there. A plain nlohmann::json assigned to them arrives key-sorted.
struct ChatOptions {
  bool add_generation_prompt = false;
  std::optional<bool> thinking;        // V3.1 / Qwen3 hybrid templates: passed as `thinking` and `enable_thinking`
  nlohmann::ordered_json tools;        // optional tool schemas (passed as `tools` when not null)
  nlohmann::ordered_json extra = nlohmann::ordered_json::object();  // more template variables
  // The V3.2 encoder (chat_format.h) writes this schema into the system prompt; Jinja templates do not see it.
  nlohmann::ordered_json response_format;
};

// How special-token text inside message content is tokenized.
enum class ContentSpecials {
  AsText,   // default: content can never produce an added/special token
  Parse,    // Hugging Face behaviour: the whole rendered prompt is tokenized with special parsing on
};

// A rendered prompt: text plus which byte ranges came from caller data (messages, tools).
struct RenderedPrompt {
  std::string text;
  std::vector<std::pair<uint32_t, uint32_t>> data_spans;
};

class ChatTemplate {
 public:
  // `source` is the Jinja text (e.g. Tokenizer::chat_template()); bos/eos are exposed as bos_token/eos_token.
  ChatTemplate(std::string source, std::string bos_token, std::string eos_token, jinja::Limits limits = {});
  // The server can pass limits with `cancel` pointing at its shutdown flag, so a render in flight ends on SIGTERM.
  static ChatTemplate from_tokenizer(const Tokenizer& tok, jinja::Limits limits = {});

  // messages: a JSON array of message objects (OpenAI format). Throws ds::Error on template errors, on input nested
  // deeper than limits.max_value_depth, and when the render exceeds its limits (jinja.h, docs/SECURITY.md). The
  // ordered_json form keeps the caller's key order (visible where a template applies tojson to message data).
  RenderedPrompt render(const nlohmann::json& messages, const ChatOptions& opt = {}) const;
  RenderedPrompt render(const nlohmann::ordered_json& messages, const ChatOptions& opt = {}) const;
  RenderedPrompt render(const std::vector<ChatMessage>& messages, const ChatOptions& opt = {}) const;

  const std::string& source() const { return source_; }
  // True if the template knows the thinking switch (V3.1-style hybrid).
  bool supports_thinking() const { return source_.find("thinking") != std::string::npos; }

 private:
  RenderedPrompt render_value(jinja::Value messages, const ChatOptions& opt) const;

  std::string source_, bos_, eos_;
  jinja::Template tmpl_;
};

// Tokenizes a rendered prompt. With AsText, added tokens are matched only inside scaffolding spans; the text
// between them (scaffolding and content alike) is encoded as one run, so for content without special-token text
// the ids equal Hugging Face's exactly. Never adds BOS (the templates emit it).
std::vector<int32_t> encode_prompt(const Tokenizer& tok, const RenderedPrompt& p,
                                   ContentSpecials mode = ContentSpecials::AsText);

}  // namespace ds::tok
