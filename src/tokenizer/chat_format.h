// SPDX-License-Identifier: MIT
// How a model turns a conversation into its prompt, whichever way the model defines it: a Jinja chat template
// (tokenizer_config.json's chat_template, a GGUF's tokenizer.chat_template; chat_template.h), or DeepSeek-V3.2's
// encoder (dsv32_encoding.h), which V3.2 ships instead of a template. Callers (server, `run`, `template`) render
// through this and do not care which.
#pragma once
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "tokenizer/chat_template.h"
#include "tokenizer/jinja.h"
#include "tokenizer/tokenizer.h"

namespace ds::tok {

enum class ChatFormatKind { Jinja, Dsv32 };

class ChatFormat {
 public:
  explicit ChatFormat(ChatTemplate tmpl) : tmpl_(std::move(tmpl)) {}
  static ChatFormat dsv32() { return ChatFormat(); }
  // `choice`: "auto" (the tokenizer's Jinja template; without one, the V3.2 encoder when model_type is deepseek_v32;
  // nullopt when neither applies), "jinja" (the template, which must exist) or "dsv32" (the V3.2 encoder, with any
  // tokenizer). Throws ds::Error for another choice or "jinja" without a template.
  static std::optional<ChatFormat> select(const Tokenizer& tok, std::string_view model_type,
                                          std::string_view choice = "auto", jinja::Limits limits = {});

  ChatFormatKind kind() const { return tmpl_ ? ChatFormatKind::Jinja : ChatFormatKind::Dsv32; }
  const char* name() const { return tmpl_ ? "jinja" : "dsv32"; }
  const ChatTemplate* jinja() const { return tmpl_ ? &*tmpl_ : nullptr; }
  // True if ChatOptions::thinking switches something (V3.1/Qwen3 hybrid templates; V3.2: thinking vs chat mode).
  bool supports_thinking() const { return !tmpl_ || tmpl_->supports_thinking(); }

  // Jinja: ChatTemplate::render. V3.2: encode_messages in thinking mode when opt.thinking is true, else chat mode (the
  // conversation always ends ready for the answer: add_generation_prompt changes nothing); opt.tools and
  // opt.response_format go onto the first message when it is a system message (unless it has its own), else onto a
  // system message put first; drop_thinking is false (the same bytes as the encoder's default wherever that one
  // succeeds: it only drops reasoning that is never rendered, and developer messages before the last user turn, after
  // which it fails on an index). opt.extra is not used by the V3.2 encoder.
  RenderedPrompt render(const nlohmann::json& messages, const ChatOptions& opt = {}) const;
  RenderedPrompt render(const nlohmann::ordered_json& messages, const ChatOptions& opt = {}) const;
  RenderedPrompt render(const std::vector<ChatMessage>& messages, const ChatOptions& opt = {}) const;

 private:
  ChatFormat() = default;
  std::optional<ChatTemplate> tmpl_;  // empty: the V3.2 encoder
};

// "auto", "jinja", "dsv32": the --chat-format values.
inline constexpr const char* kChatFormatChoices = "auto, jinja, dsv32";

// config.json's model_type in a model folder; for a GGUF file its general.architecture, deepseek32 read as
// deepseek_v32 ("" when there is none).
std::string read_model_type(const std::string& model);

}  // namespace ds::tok
