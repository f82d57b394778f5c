// SPDX-License-Identifier: MIT
// Chat template rendering and scaffold-aware prompt tokenization (see chat_template.h).
#include "tokenizer/chat_template.h"

#include "base/error.h"

namespace ds::tok {

nlohmann::json ChatMessage::to_json() const {
  nlohmann::json m = {{"role", role}};
  m["content"] = content ? nlohmann::json(*content) : nlohmann::json();
  if (!tool_calls.empty()) {
    auto calls = nlohmann::json::array();
    for (const auto& c : tool_calls)
      calls.push_back({{"id", c.id}, {"type", "function"}, {"function", {{"name", c.name}, {"arguments", c.arguments}}}});
    m["tool_calls"] = std::move(calls);
  }
  if (tool_call_id) m["tool_call_id"] = *tool_call_id;
  if (reasoning_content) m["reasoning_content"] = *reasoning_content;
  if (prefix) m["prefix"] = true;
  return m;
}

ChatTemplate::ChatTemplate(std::string source, std::string bos_token, std::string eos_token, jinja::Limits limits)
    : source_(std::move(source)), bos_(std::move(bos_token)), eos_(std::move(eos_token)), tmpl_(source_, limits) {}

ChatTemplate ChatTemplate::from_tokenizer(const Tokenizer& tok, jinja::Limits limits) {
  DS_CHECK(!tok.chat_template().empty(), "tokenizer_config.json has no chat_template");
  return ChatTemplate(tok.chat_template(), tok.bos_token(), tok.eos_token(), limits);
}

namespace {
template <typename Json>
void check_messages(const Json& messages) {
  DS_CHECK(messages.is_array(), "chat messages must be a JSON array");
  for (const auto& m : messages)
    DS_CHECK(m.is_object() && m.contains("role") && m["role"].is_string(), "each chat message needs a string \"role\"");
}
}  // namespace

RenderedPrompt ChatTemplate::render(const nlohmann::json& messages, const ChatOptions& opt) const {
  check_messages(messages);
  return render_value(jinja::from_json(messages, /*as_data=*/true, tmpl_.limits().max_value_depth), opt);
}

RenderedPrompt ChatTemplate::render(const nlohmann::ordered_json& messages, const ChatOptions& opt) const {
  check_messages(messages);
  return render_value(jinja::from_json(messages, /*as_data=*/true, tmpl_.limits().max_value_depth), opt);
}

RenderedPrompt ChatTemplate::render_value(jinja::Value messages, const ChatOptions& opt) const {
  std::vector<std::pair<std::string, jinja::Value>> g;
  g.push_back({"messages", std::move(messages)});
  g.push_back({"add_generation_prompt", jinja::Value::boolean(opt.add_generation_prompt)});
  g.push_back({"bos_token", jinja::Value::plain(bos_)});
  g.push_back({"eos_token", jinja::Value::plain(eos_)});
  if (opt.thinking) {
    g.push_back({"thinking", jinja::Value::boolean(*opt.thinking)});
    g.push_back({"enable_thinking", jinja::Value::boolean(*opt.thinking)});
  }
  const size_t depth = tmpl_.limits().max_value_depth;
  if (!opt.tools.is_null()) g.push_back({"tools", jinja::from_json(opt.tools, true, depth)});
  if (opt.extra.is_object())
    for (auto it = opt.extra.begin(); it != opt.extra.end(); ++it)
      g.push_back({it.key(), jinja::from_json(it.value(), true, depth)});
  jinja::TString out = tmpl_.render(g);
  return RenderedPrompt{std::move(out.s), std::move(out.taint)};
}

RenderedPrompt ChatTemplate::render(const std::vector<ChatMessage>& messages, const ChatOptions& opt) const {
  auto arr = nlohmann::json::array();
  for (const auto& m : messages) arr.push_back(m.to_json());
  return render(arr, opt);
}

std::vector<int32_t> encode_prompt(const Tokenizer& tok, const RenderedPrompt& p, ContentSpecials mode) {
  if (mode == ContentSpecials::Parse) return tok.encode(p.text, true);
  std::vector<int32_t> out;
  const std::string_view text = p.text;
  size_t run_begin = 0;  // start of the pending plain-text run
  const auto scaffold = [&](size_t b, size_t e) {
    // Special tokens may only come from scaffolding: match added tokens inside [b, e) alone.
    std::vector<Segment> segs;
    tok.added_tokens().split(text.substr(b, e - b), segs);
    for (const Segment& s : segs) {
      if (s.id < 0) continue;
      const size_t at = b + s.begin;
      if (at > run_begin) tok.encode_append(text.substr(run_begin, at - run_begin), false, out);
      out.push_back(s.id);
      run_begin = at + s.len;
    }
  };
  size_t pos = 0;
  for (auto [a, b] : p.data_spans) {
    if (a > pos) scaffold(pos, a);
    pos = b;
  }
  if (pos < text.size()) scaffold(pos, text.size());
  if (run_begin < text.size()) tok.encode_append(text.substr(run_begin), false, out);
  return out;
}

}  // namespace ds::tok
