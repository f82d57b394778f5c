// SPDX-License-Identifier: MIT
// Jinja template or DeepSeek-V3.2 encoder behind one interface (see chat_format.h).
#include "tokenizer/chat_format.h"

#include <filesystem>

#include "base/error.h"
#include "io/gguf.h"
#include "io/json_util.h"
#include "tokenizer/dsv32_encoding.h"
#include "tokenizer/gguf_vocab.h"

namespace ds::tok {

namespace {

using oj = nlohmann::ordered_json;

oj message_json(const ChatMessage& m) {
  oj o = {{"role", m.role}};
  o["content"] = m.content ? oj(*m.content) : oj();
  if (m.reasoning_content) o["reasoning_content"] = *m.reasoning_content;
  if (!m.tool_calls.empty()) {
    oj calls = oj::array();
    for (const auto& c : m.tool_calls)
      calls.push_back({{"id", c.id}, {"type", "function"}, {"function", {{"name", c.name}, {"arguments", c.arguments}}}});
    o["tool_calls"] = std::move(calls);
  }
  if (m.tool_call_id) o["tool_call_id"] = *m.tool_call_id;
  return o;
}

RenderedPrompt encode_dsv32(oj messages, const ChatOptions& opt) {
  DS_CHECK(messages.is_array(), "chat messages must be a JSON array");
  oj extra = oj::object();
  if (opt.tools.is_array() && !opt.tools.empty()) extra["tools"] = opt.tools;
  if (!opt.response_format.is_null()) extra["response_format"] = opt.response_format;
  if (!extra.empty()) {
    oj* sys = nullptr;
    if (!messages.empty() && messages[0].is_object() && messages[0].contains("role") && messages[0]["role"] == "system")
      sys = &messages[0];
    if (!sys) {
      messages.insert(messages.begin(), oj{{"role", "system"}});
      sys = &messages[0];
    }
    for (auto it = extra.begin(); it != extra.end(); ++it)
      if (!sys->contains(it.key())) (*sys)[it.key()] = it.value();
  }
  dsv32::EncodeOptions eo;
  eo.thinking = opt.thinking.value_or(false);
  eo.drop_thinking = false;
  return dsv32::encode_messages(messages, eo);
}

}  // namespace

std::optional<ChatFormat> ChatFormat::select(const Tokenizer& tok, std::string_view model_type, std::string_view choice,
                                             jinja::Limits limits) {
  if (choice == "dsv32") return dsv32();
  DS_CHECK(choice == "auto" || choice == "jinja", "chat format '", choice, "' is not one of: ", kChatFormatChoices);
  if (!tok.chat_template().empty()) return ChatFormat(ChatTemplate::from_tokenizer(tok, limits));
  DS_CHECK(choice == "auto", "the tokenizer has no chat template (--chat-format jinja)");
  if (model_type == "deepseek_v32") return dsv32();
  return std::nullopt;
}

RenderedPrompt ChatFormat::render(const nlohmann::json& messages, const ChatOptions& opt) const {
  if (tmpl_) return tmpl_->render(messages, opt);
  return encode_dsv32(oj(messages), opt);
}

RenderedPrompt ChatFormat::render(const nlohmann::ordered_json& messages, const ChatOptions& opt) const {
  if (tmpl_) return tmpl_->render(messages, opt);
  return encode_dsv32(messages, opt);
}

RenderedPrompt ChatFormat::render(const std::vector<ChatMessage>& messages, const ChatOptions& opt) const {
  if (tmpl_) return tmpl_->render(messages, opt);
  oj arr = oj::array();
  for (const auto& m : messages) arr.push_back(message_json(m));
  return encode_dsv32(std::move(arr), opt);
}

std::string read_model_type(const std::string& model) {
  namespace fs = std::filesystem;
  if (is_gguf_file(model)) {  // llama.cpp's architecture name; deepseek32 is V3.2 (io::config_from_gguf maps it so)
    try {
      const auto file = io::GgufFile::open(model);  // kept alive: `a` points into its metadata
      const io::GgufValue* a = file->find("general.architecture");
      if (a && a->type == io::GgufType::STRING) return a->s == "deepseek32" ? "deepseek_v32" : a->s;
    } catch (const std::exception&) {
    }
    return "";
  }
  std::error_code ec;
  const fs::path cfg = fs::path(model) / "config.json";
  if (!fs::is_directory(model, ec) || !fs::is_regular_file(cfg, ec)) return "";
  try {
    const auto j = io::read_json_file(cfg.string(), 16u << 20);
    if (j.is_object() && j.contains("model_type") && j["model_type"].is_string())
      return j["model_type"].get<std::string>();
  } catch (const std::exception&) {
  }
  return "";
}

}  // namespace ds::tok
