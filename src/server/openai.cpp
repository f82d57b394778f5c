// SPDX-License-Identifier: MIT
#include "server/openai.h"

#include <cmath>
#include <limits>
#include <random>

#include "base/error.h"
#include "tokenizer/dsv32_encoding.h"
#include "tokenizer/reasoning.h"

namespace ds::server {

const char* const kToolCallsBegin = "<｜tool▁calls▁begin｜>";

json error_body(const std::string& message, const std::string& type, const std::string& param,
                const std::string& code) {
  return json{{"error",
               {{"message", message},
                {"type", type},
                {"param", param.empty() ? json() : json(param)},
                {"code", code.empty() ? json() : json(code)}}}};
}

std::string dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

namespace {

[[noreturn]] void bad(const std::string& msg, const std::string& param, const std::string& code = "invalid_value") {
  throw ApiError(400, msg, param, code);
}

// Depth of [ / { nesting outside strings; rejects before the (recursive-destructor) DOM is built.
int json_depth(const std::string& s) {
  int depth = 0, max_depth = 0;
  bool in_str = false, esc = false;
  for (char ch : s) {
    if (in_str) {
      if (esc) esc = false;
      else if (ch == '\\') esc = true;
      else if (ch == '"') in_str = false;
      continue;
    }
    if (ch == '"') in_str = true;
    else if (ch == '[' || ch == '{') max_depth = std::max(max_depth, ++depth);
    else if (ch == ']' || ch == '}') --depth;
  }
  return max_depth;
}

const json* field(const json& b, const char* name) {
  auto it = b.find(name);
  if (it == b.end() || it->is_null()) return nullptr;
  return &*it;
}

double get_number(const json& b, const char* name, double lo, double hi, double def) {
  const json* v = field(b, name);
  if (!v) return def;
  if (!v->is_number()) bad(std::string("'") + name + "' must be a number", name, "invalid_type");
  const double x = v->get<double>();
  if (!std::isfinite(x) || x < lo || x > hi)
    bad(std::string("'") + name + "' must be in [" + json(lo).dump() + ", " + json(hi).dump() + "]", name);
  return x;
}

int64_t get_int(const json& b, const char* name, int64_t lo, int64_t hi, int64_t def) {
  const json* v = field(b, name);
  if (!v) return def;
  if (!v->is_number_integer()) bad(std::string("'") + name + "' must be an integer", name, "invalid_type");
  if (v->is_number_unsigned()) {
    const uint64_t u = v->get<uint64_t>();
    if (u > uint64_t(hi) || (lo > 0 && u < uint64_t(lo)))
      bad(std::string("'") + name + "' must be in [" + std::to_string(lo) + ", " + std::to_string(hi) + "]", name);
    return int64_t(u);
  }
  const int64_t x = v->get<int64_t>();
  if (x < lo || x > hi)
    bad(std::string("'") + name + "' must be in [" + std::to_string(lo) + ", " + std::to_string(hi) + "]", name);
  return x;
}

bool get_bool(const json& b, const char* name, bool def) {
  const json* v = field(b, name);
  if (!v) return def;
  if (!v->is_boolean()) bad(std::string("'") + name + "' must be a boolean", name, "invalid_type");
  return v->get<bool>();
}

void check_model(const json& b, const ParseContext& c) {
  const json* m = field(b, "model");
  if (!m) return;
  if (!m->is_string()) bad("'model' must be a string", "model", "invalid_type");
  const std::string& name = m->get_ref<const std::string&>();
  if (name != c.model_name) throw ApiError(404, "The model does not exist; see GET /v1/models", "model", "model_not_found");
}

// Sampling, stop, n, streaming, logprob bounds shared by both endpoints.
void common_params(const json& b, const ParseContext& c, CompletionRequest& r) {
  check_model(b, c);
  auto& sp = r.gen.sampling;
  sp.temperature = float(get_number(b, "temperature", 0, 2, c.defaults.temperature));
  sp.top_p = float(get_number(b, "top_p", 0, 1, c.defaults.top_p));
  if (sp.top_p <= 0) bad("'top_p' must be in (0, 1]", "top_p");
  sp.top_k = int32_t(get_int(b, "top_k", 0, c.vocab, 0));
  sp.min_p = float(get_number(b, "min_p", 0, 1, 0));
  sp.presence_penalty = float(get_number(b, "presence_penalty", -2, 2, 0));
  sp.frequency_penalty = float(get_number(b, "frequency_penalty", -2, 2, 0));
  sp.repetition_penalty = float(get_number(b, "repetition_penalty", 0.01, 10, 1));
  if (const json* s = field(b, "seed")) {
    if (!s->is_number_integer()) bad("'seed' must be an integer", "seed", "invalid_type");
    sp.seed = s->is_number_unsigned() ? s->get<uint64_t>() : uint64_t(s->get<int64_t>());
    r.seed_given = true;
  } else {
    sp.seed = std::random_device{}();
  }
  r.n = int(get_int(b, "n", 1, c.limits.max_n, 1));
  r.stream = get_bool(b, "stream", false);
  if (const json* so = field(b, "stream_options")) {
    if (!so->is_object()) bad("'stream_options' must be an object", "stream_options", "invalid_type");
    r.include_usage = get_bool(*so, "include_usage", false);
  }
  if (const json* st = field(b, "stop")) {
    std::vector<std::string> stops;
    if (st->is_string()) stops.push_back(st->get<std::string>());
    else if (st->is_array()) {
      if (st->size() > size_t(c.limits.max_stop))
        bad("'stop' has more than " + std::to_string(c.limits.max_stop) + " strings", "stop");
      for (const auto& s : *st) {
        if (!s.is_string()) bad("'stop' must be a string or an array of strings", "stop", "invalid_type");
        stops.push_back(s.get<std::string>());
      }
    } else {
      bad("'stop' must be a string or an array of strings", "stop", "invalid_type");
    }
    for (const auto& s : stops) {
      if (s.empty()) bad("'stop' strings must not be empty", "stop");
      if (s.size() > c.limits.max_stop_bytes)
        bad("'stop' strings are limited to " + std::to_string(c.limits.max_stop_bytes) + " bytes", "stop");
    }
    r.stop = std::move(stops);
  }
  r.gen.ignore_eos = get_bool(b, "ignore_eos", false);
  const json* lb = field(b, "logit_bias");
  if (lb && !(lb->is_object() && lb->empty())) bad("'logit_bias' is not supported", "logit_bias", "unsupported");
}

void set_max_tokens(const json& b, const ParseContext& c, CompletionRequest& r, const char* name2) {
  int64_t v = get_int(b, "max_tokens", 1, c.limits.max_tokens, -1);
  if (name2) {
    const int64_t v2 = get_int(b, name2, 1, c.limits.max_tokens, -1);
    if (v2 > 0) v = v2;
  }
  for (auto& p : r.prompts) {
    const int64_t room = c.ctx - int64_t(p.ids.size());
    p.max_tokens = v > 0 ? v : std::max<int64_t>(1, std::min<int64_t>(room, c.limits.max_tokens));
  }
}

void check_prompt_fits(const ParseContext& c, const std::vector<int32_t>& ids, const char* param) {
  if (ids.empty()) bad("the prompt is empty", param);
  if (int64_t(ids.size()) >= c.ctx)
    throw ApiError(400,
                   "This model's context holds " + std::to_string(c.ctx) + " tokens; the prompt has " +
                       std::to_string(ids.size()),
                   param, "context_length_exceeded");
}

// A failure's reason that comes from the model folder (a template's raise_exception() text, a tokenizer.json regex),
// cut short: it is the model's text, not the client's.
std::string model_reason(const ds::Error& e) {
  std::string why = e.what();
  if (why.size() > 300) why = why.substr(0, 300) + "...";
  return why;
}

// One prompt of /v1/completions: text, whose special-token text (e.g. <｜begin▁of▁sentence｜>) becomes the special
// token as Hugging Face's encode does by default, after the BOS the tokenizer adds; or token ids as given.
CompletionRequest::Prompt completion_prompt(const json& p, const ParseContext& c, bool echo) {
  CompletionRequest::Prompt out;
  if (p.is_string()) {
    const std::string& text = p.get_ref<const std::string&>();
    if (text.empty()) bad("the prompt is empty", "prompt");
    if (text.size() > size_t(c.ctx) * 32)
      throw ApiError(400, "the prompt is far longer than the context of " + std::to_string(c.ctx) + " tokens",
                     "prompt", "context_length_exceeded");
    if (c.tok->add_bos() && c.tok->bos_id() >= 0) out.ids.push_back(c.tok->bos_id());
    encode_text(*c.tok, text, true, out.ids, "prompt");
    if (echo) out.echo = text;
  } else if (p.is_array()) {
    if (p.size() >= size_t(c.ctx))
      throw ApiError(400, "the prompt is longer than the context of " + std::to_string(c.ctx) + " tokens", "prompt",
                     "context_length_exceeded");
    for (const auto& id : p) {
      if (!id.is_number_integer()) bad("'prompt' must be a string, or an array of token ids", "prompt", "invalid_type");
      if (id.is_number_unsigned() ? id.get<uint64_t>() >= uint64_t(c.vocab) : (id.get<int64_t>() < 0 || id.get<int64_t>() >= c.vocab))
        bad("'prompt' holds a token id outside the vocabulary", "prompt");
      out.ids.push_back(int32_t(id.get<int64_t>()));
    }
    if (echo) out.echo = c.tok->decode(out.ids);
  } else {
    bad("'prompt' must be a string, token ids, or an array of strings or of token-id arrays", "prompt", "invalid_type");
  }
  check_prompt_fits(c, out.ids, "prompt");
  return out;
}

std::string message_content(const json& m, size_t i, bool allow_null) {
  const std::string param = "messages[" + std::to_string(i) + "].content";
  auto it = m.find("content");
  if (it == m.end() || it->is_null()) {
    if (allow_null) return {};
    bad("'" + param + "' is required", param);
  }
  if (it->is_string()) return it->get<std::string>();
  if (it->is_array()) {
    std::string out;
    for (const auto& part : *it) {
      if (!part.is_object() || !part.contains("type") || part["type"] != "text" || !part.contains("text") ||
          !part["text"].is_string())
        bad("'" + param + "' parts must be {\"type\": \"text\", \"text\": string}", param, "invalid_type");
      out += part["text"].get<std::string>();
    }
    return out;
  }
  bad("'" + param + "' must be a string or an array of text parts", param, "invalid_type");
}

}  // namespace

void encode_text(const tok::Tokenizer& tok, std::string_view text, bool parse_special, std::vector<int32_t>& ids,
                 const std::string& param) {
  try {
    tok.encode_append(text, parse_special, ids);
  } catch (const ds::Error& e) {
    throw ApiError(400, "the model's tokenizer could not encode this text: " + model_reason(e), param,
                   "tokenizer_error");
  }
}

json parse_body(const std::string& body, int max_depth) {
  if (json_depth(body) > max_depth)
    throw ApiError(400, "the JSON body is nested more than " + std::to_string(max_depth) + " levels", "", "invalid_json");
  json j = json::parse(body, nullptr, false);
  if (j.is_discarded()) throw ApiError(400, "the body is not valid JSON (or not valid UTF-8)", "", "invalid_json");
  if (!j.is_object()) throw ApiError(400, "the body must be a JSON object", "", "invalid_json");
  return j;
}

CompletionRequest parse_chat(const json& b, const ParseContext& c, const nlohmann::ordered_json* ordered) {
  CompletionRequest r;
  r.chat = true;
  if (!c.fmt) throw ApiError(400, "this model has no chat template; use /v1/completions", "messages", "no_chat_template");
  // DeepSeek-V3.2's encoder has a developer role of its own (a user turn carrying tools); templates get a system one.
  const bool dsv32 = c.fmt->kind() == tok::ChatFormatKind::Dsv32;
  const json* msgs = field(b, "messages");
  if (!msgs) bad("'messages' is required", "messages", "missing_required_parameter");
  if (!msgs->is_array()) bad("'messages' must be an array", "messages", "invalid_type");
  if (msgs->empty()) bad("'messages' must not be empty", "messages");
  if (msgs->size() > c.limits.max_messages)
    bad("'messages' holds more than " + std::to_string(c.limits.max_messages) + " messages", "messages");
  std::vector<tok::ChatMessage> messages;
  size_t text_bytes = 0;
  for (size_t i = 0; i < msgs->size(); ++i) {
    const json& m = (*msgs)[i];
    const std::string p = "messages[" + std::to_string(i) + "]";
    if (!m.is_object()) bad("'" + p + "' must be an object", p, "invalid_type");
    auto role_it = m.find("role");
    if (role_it == m.end() || !role_it->is_string()) bad("'" + p + ".role' must be a string", p + ".role", "invalid_type");
    std::string role = role_it->get<std::string>();
    if (role == "developer" && !dsv32) role = "system";
    if (role != "system" && role != "user" && role != "assistant" && role != "tool" && role != "developer")
      bad("'" + p + ".role' must be system, developer, user, assistant or tool", p + ".role");
    tok::ChatMessage cm;
    cm.role = role;
    const bool has_calls = role == "assistant" && m.contains("tool_calls") && !m["tool_calls"].is_null();
    std::string content = message_content(m, i, role == "assistant");
    const bool null_content = !m.contains("content") || m["content"].is_null();
    if (!(null_content && has_calls)) cm.content = content;
    text_bytes += content.size();
    if (has_calls) {
      const json& tc = m["tool_calls"];
      if (!tc.is_array()) bad("'" + p + ".tool_calls' must be an array", p + ".tool_calls", "invalid_type");
      for (const auto& call : tc) {
        if (!call.is_object() || !call.contains("function") || !call["function"].is_object())
          bad("'" + p + ".tool_calls' entries need a function object", p + ".tool_calls", "invalid_type");
        const json& f = call["function"];
        if (!f.contains("name") || !f["name"].is_string() || !f.contains("arguments") || !f["arguments"].is_string())
          bad("'" + p + ".tool_calls[].function' needs string name and arguments", p + ".tool_calls", "invalid_type");
        tok::ToolCall t;
        t.id = call.contains("id") && call["id"].is_string() ? call["id"].get<std::string>() : "";
        t.name = f["name"].get<std::string>();
        t.arguments = f["arguments"].get<std::string>();
        text_bytes += t.name.size() + t.arguments.size();
        cm.tool_calls.push_back(std::move(t));
      }
    }
    if (m.contains("tool_call_id") && !m["tool_call_id"].is_null()) {
      if (!m["tool_call_id"].is_string()) bad("'" + p + ".tool_call_id' must be a string", p + ".tool_call_id", "invalid_type");
      cm.tool_call_id = m["tool_call_id"].get<std::string>();
    }
    if (m.contains("reasoning_content") && !m["reasoning_content"].is_null()) {
      if (!m["reasoning_content"].is_string())
        bad("'" + p + ".reasoning_content' must be a string", p + ".reasoning_content", "invalid_type");
      cm.reasoning_content = m["reasoning_content"].get<std::string>();
    }
    if (m.contains("prefix")) cm.prefix = get_bool(m, "prefix", false);
    messages.push_back(std::move(cm));
  }
  // Text longer than 32 bytes per context token cannot fit; refuse before tokenizing.
  if (text_bytes > size_t(c.ctx) * 32)
    throw ApiError(400, "the messages are far longer than the context of " + std::to_string(c.ctx) + " tokens",
                   "messages", "context_length_exceeded");

  tok::ChatOptions co;
  co.add_generation_prompt = true;
  if (const json* th = field(b, "thinking")) {
    if (th->is_boolean()) co.thinking = th->get<bool>();
    else if (th->is_object() && th->contains("type") && (*th)["type"].is_string() &&
             ((*th)["type"] == "enabled" || (*th)["type"] == "disabled"))
      co.thinking = (*th)["type"] == "enabled";
    else bad("'thinking' must be a boolean or {\"type\": \"enabled\"|\"disabled\"}", "thinking", "invalid_type");
  }
  if (const json* kw = field(b, "chat_template_kwargs")) {
    if (!kw->is_object()) bad("'chat_template_kwargs' must be an object", "chat_template_kwargs", "invalid_type");
    for (auto it = kw->begin(); it != kw->end(); ++it) {
      if (it.key() != "thinking" && it.key() != "enable_thinking")
        bad("'chat_template_kwargs' accepts only thinking / enable_thinking", "chat_template_kwargs");
      if (!it.value().is_boolean()) bad("'chat_template_kwargs." + it.key() + "' must be a boolean", "chat_template_kwargs", "invalid_type");
      co.thinking = it.value().get<bool>();
    }
  }
  std::string tool_choice = "auto";
  if (const json* tch = field(b, "tool_choice")) {
    if (tch->is_string()) {
      tool_choice = tch->get<std::string>();
      if (tool_choice != "none" && tool_choice != "auto" && tool_choice != "required")
        bad("'tool_choice' must be none, auto, required or a function object", "tool_choice");
    } else if (!tch->is_object()) {
      bad("'tool_choice' must be a string or an object", "tool_choice", "invalid_type");
    }
  }
  if (const json* tools = field(b, "tools")) {
    if (!tools->is_array()) bad("'tools' must be an array", "tools", "invalid_type");
    if (tools->size() > c.limits.max_tools) bad("'tools' holds too many entries", "tools");
    for (const auto& t : *tools) {
      if (!t.is_object() || !t.contains("function") || !t["function"].is_object() || !t["function"].contains("name") ||
          !t["function"]["name"].is_string())
        bad("'tools' entries must be {\"type\": \"function\", \"function\": {\"name\": string, ...}}", "tools", "invalid_type");
      if (t["function"].contains("parameters") && !t["function"]["parameters"].is_object())
        bad("'tools[].function.parameters' must be an object", "tools", "invalid_type");
    }
    if (!tools->empty() && tool_choice != "none") {
      r.tools = true;
      r.tool_format = c.tools.format;
      if (c.tools.renders_tools) {
        if (dsv32 && ordered) co.tools = ordered->at("tools");  // printed as the caller wrote them
        else co.tools = *tools;
      } else if (!messages.empty() && messages[0].role == "system") {
        messages[0].content = messages[0].content.value_or("") + "\n\n" + tools_system_prompt(*tools, r.tool_format);
      } else {
        tok::ChatMessage sys;
        sys.role = "system";
        sys.content = tools_system_prompt(*tools, r.tool_format);
        messages.insert(messages.begin(), std::move(sys));
      }
    }
  }
  // V3.2 writes a json_schema response_format's schema into its system prompt (parse_response_format validates it).
  if (dsv32)
    if (const json* rf = field(b, "response_format"); rf && rf->is_object() && rf->value("type", json()) == "json_schema")
      if (const auto js = rf->find("json_schema"); js != rf->end() && js->is_object())
        if (const auto s = js->find("schema"); s != js->end() && s->is_object())
          co.response_format = ordered ? ordered->at("response_format").at("json_schema").at("schema")
                                       : nlohmann::ordered_json(*s);
  tok::RenderedPrompt rp;
  try {
    rp = c.fmt->render(messages, co);
  } catch (const ds::Error& e) {
    // The reason is the template engine's own text (a raise_exception() message, or the render budget it exceeded), or
    // what DeepSeek's V3.2 encoder refuses (a tool result without a call, ...).
    throw ApiError(400, std::string(dsv32 ? "the DeepSeek-V3.2 encoding" : "the chat template") +
                            " could not render these messages: " + model_reason(e),
                   "messages", "template_error");
  }
  r.opens_reasoning = tok::prompt_opens_reasoning(rp.text);
  r.prompt_text = rp.text;
  r.prompts.emplace_back();
  try {
    r.prompts[0].ids = tok::encode_prompt(*c.tok, rp);
  } catch (const ds::Error& e) {
    throw ApiError(400, "the model's tokenizer could not encode these messages: " + model_reason(e), "messages",
                   "tokenizer_error");
  }
  check_prompt_fits(c, r.prompts[0].ids, "messages");
  common_params(b, c, r);
  r.logprobs = get_bool(b, "logprobs", false);
  r.top_logprobs = int(get_int(b, "top_logprobs", 0, c.limits.max_top_logprobs, 0));
  if (field(b, "top_logprobs") && !r.logprobs) bad("'top_logprobs' needs 'logprobs': true", "top_logprobs");
  r.gen.top_logprobs = r.logprobs ? r.top_logprobs : -1;
  set_max_tokens(b, c, r, "max_completion_tokens");
  return r;
}

CompletionRequest parse_completion(const json& b, const ParseContext& c) {
  CompletionRequest r;
  const json* p = field(b, "prompt");
  if (!p) bad("'prompt' is required", "prompt", "missing_required_parameter");
  const bool echo = get_bool(b, "echo", false);
  // A list of prompts (strings or token-id arrays), else one prompt (a string or token ids).
  if (p->is_array() && !p->empty() && ((*p)[0].is_string() || (*p)[0].is_array())) {
    if (p->size() > c.limits.max_prompts)
      bad("'prompt' holds more than " + std::to_string(c.limits.max_prompts) + " prompts", "prompt");
    for (const auto& one : *p) {
      if (!one.is_string() && !one.is_array())
        bad("'prompt' lists must hold strings or token-id arrays", "prompt", "invalid_type");
      r.prompts.push_back(completion_prompt(one, c, echo));
    }
  } else {
    r.prompts.push_back(completion_prompt(*p, c, echo));
  }
  common_params(b, c, r);
  if (const json* lp = field(b, "logprobs")) {
    if (lp->is_boolean()) {
      r.logprobs = lp->get<bool>();
    } else {
      r.top_logprobs = int(get_int(b, "logprobs", 0, c.limits.max_top_logprobs, 0));
      r.logprobs = true;
    }
  }
  // OpenAI's echo with logprobs also scores the prompt tokens, which the scheduler does not compute.
  if (echo && r.logprobs) bad("'echo' together with 'logprobs' is not supported", "echo", "unsupported");
  if (const json* sfx = field(b, "suffix"); sfx && !(sfx->is_string() && sfx->get_ref<const std::string&>().empty()))
    bad("'suffix' (insertion) is not supported", "suffix", "unsupported");
  if (field(b, "best_of") && get_int(b, "best_of", 1, 1, 1) != 1) bad("'best_of' must be 1", "best_of");
  r.gen.top_logprobs = r.logprobs ? r.top_logprobs : -1;
  set_max_tokens(b, c, r, nullptr);
  return r;
}

void parse_response_format(const nlohmann::ordered_json& b, const ParseContext& c, CompletionRequest& r) {
  const auto it = b.find("response_format");
  if (it == b.end() || it->is_null()) return;
  const auto& rf = *it;
  const char* P = "response_format";
  if (!rf.is_object() || !rf.contains("type") || !rf["type"].is_string())
    bad("'response_format' must be an object with a string 'type'", P, "invalid_type");
  const std::string type = rf["type"].get<std::string>();
  if (type == "text") return;
  std::shared_ptr<const JsonGrammar> g;
  if (type == "json_object") {
    g = JsonGrammar::any_object();
  } else if (type == "json_schema") {
    const auto js = rf.find("json_schema");
    if (js == rf.end() || !js->is_object())
      bad("'response_format.json_schema' must be an object", P, js == rf.end() ? "missing_required_parameter" : "invalid_type");
    if (js->contains("name") && !(*js)["name"].is_string())
      bad("'response_format.json_schema.name' must be a string", P, "invalid_type");
    bool strict = false;
    if (js->contains("strict") && !(*js)["strict"].is_null()) {
      if (!(*js)["strict"].is_boolean()) bad("'response_format.json_schema.strict' must be a boolean", P, "invalid_type");
      strict = (*js)["strict"].get<bool>();
    }
    const auto schema = js->find("schema");
    if (schema == js->end() || !schema->is_object())
      bad("'response_format.json_schema.schema' must be an object (a JSON schema)", P,
          schema == js->end() ? "missing_required_parameter" : "invalid_type");
    try {
      g = JsonGrammar::from_schema(*schema, strict);
    } catch (const SchemaError& e) {
      bad(std::string("'response_format.json_schema.schema' ") + e.what(), P, "unsupported_schema");
    }
  } else {
    bad("'response_format.type' must be text, json_object or json_schema", P);
  }
  if (!c.json_vocab) bad("'response_format' is not available here", P, "unsupported");
  if (r.gen.ignore_eos) bad("'ignore_eos' cannot be combined with 'response_format'", "ignore_eos", "unsupported");
  r.gen.constraint = std::make_shared<JsonConstraint>(g, c.json_vocab, r.opens_reasoning);
}

ToolSupport tool_support(const tok::ChatFormat& fmt) {
  if (const tok::ChatTemplate* t = fmt.jinja()) return tool_support(*t);
  return ToolSupport{ToolFormat::DeepSeekV32, true};
}

ToolSupport tool_support(const tok::ChatTemplate& tmpl) {
  ToolSupport s;
  const std::string& src = tmpl.source();
  if (src.find("<tool_call>") != std::string::npos) s.format = ToolFormat::Hermes;
  else if (src.find("```json") != std::string::npos) s.format = ToolFormat::DeepSeekV3;
  static const char* const kProbe = "ds_probe_tool_5e1f";
  tok::ChatOptions co;
  co.add_generation_prompt = true;
  co.tools = nlohmann::ordered_json::array({{{"type", "function"}, {"function", {{"name", kProbe}}}}});
  try {
    const auto rp = tmpl.render(json::array({{{"role", "user"}, {"content", "hi"}}}), co);
    s.renders_tools = rp.text.find(kProbe) != std::string::npos;
  } catch (const std::exception&) {
  }
  return s;
}

std::string tools_system_prompt(const json& tools, ToolFormat format) {
  std::string s = "## Tools\nYou can call these tools (one JSON object per line: name, description, parameters):\n";
  for (const auto& t : tools) s += dump(t["function"]) + "\n";
  s += "\nTo call tools, answer in this format, where NAME is a tool's name and ARGUMENTS a JSON object that follows "
       "its parameters:\n";
  switch (format) {
    case ToolFormat::DeepSeekV3:
      s += "<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>function<｜tool▁sep｜>NAME\n```json\nARGUMENTS\n```"
           "<｜tool▁call▁end｜><｜tool▁calls▁end｜>\n";
      break;
    case ToolFormat::DeepSeekV31:
      s += "<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>NAME<｜tool▁sep｜>ARGUMENTS<｜tool▁call▁end｜><｜tool▁calls▁end｜>\n";
      break;
    case ToolFormat::Hermes:
      s += "<tool_call>\n{\"name\": NAME, \"arguments\": ARGUMENTS}\n</tool_call>\n";
      return s + "For several calls, write one <tool_call> block after another.";
    case ToolFormat::DeepSeekV32:  // the V3.2 encoder describes tools itself; this is never sent
      s += "<｜DSML｜function_calls>\n<｜DSML｜invoke name=\"NAME\">\n<｜DSML｜parameter name=\"KEY\" "
           "string=\"true|false\">VALUE</｜DSML｜parameter>\n</｜DSML｜invoke>\n</｜DSML｜function_calls>\n";
      return s + "For several calls, write one <｜DSML｜invoke> after another.";
  }
  return s + "For several calls, write one <｜tool▁call▁begin｜>…<｜tool▁call▁end｜> after another before "
             "<｜tool▁calls▁end｜>.";
}

const char* tool_calls_marker(ToolFormat format) {
  switch (format) {
    case ToolFormat::Hermes: return "<tool_call>";
    case ToolFormat::DeepSeekV32: return "\n\n<｜DSML｜function_calls";
    default: return kToolCallsBegin;
  }
}

size_t tool_calls_start(const std::string& content, ToolFormat format) {
  const size_t p = content.find(tool_calls_marker(format));
  if (p != std::string::npos || format != ToolFormat::DeepSeekV32) return p;
  return content.find(tok::dsv32::kFunctionCalls);
}

size_t tool_calls_safe_end(const std::string& content, ToolFormat format) {
  if (const size_t p = tool_calls_start(content, format); p != std::string::npos) return p;
  size_t end = content.size();
  // The longest suffix of content that is a proper prefix of a marker.
  const auto hold = [&](std::string_view marker) {
    for (size_t k = std::min(marker.size() - 1, content.size()); k > 0; --k)
      if (content.compare(content.size() - k, k, marker.data(), k) == 0) {
        end = std::min(end, content.size() - k);
        return;
      }
  };
  hold(tool_calls_marker(format));
  if (format == ToolFormat::DeepSeekV32) hold(tok::dsv32::kFunctionCalls);
  return end;
}

std::vector<ParsedToolCall> parse_dsml_tool_calls(const std::string& text) {
  std::vector<ParsedToolCall> out;
  try {
    tok::dsv32::FunctionCalls fc = tok::dsv32::parse_function_calls(text);
    for (auto& call : fc.calls) out.push_back({std::move(call.name), std::move(call.arguments), fc.complete});
  } catch (const ds::Error&) {
    out.assign(1, ParsedToolCall{});  // malformed: the output stays text
  }
  return out;
}

std::vector<ParsedToolCall> parse_tool_calls(const std::string& text, ToolFormat format) {
  switch (format) {
    case ToolFormat::Hermes: return parse_hermes_tool_calls(text);
    case ToolFormat::DeepSeekV32: return parse_dsml_tool_calls(text);
    default: return parse_tool_calls(text);
  }
}

std::vector<ParsedToolCall> parse_hermes_tool_calls(const std::string& text) {
  static const std::string kOpen = "<tool_call>", kClose = "</tool_call>";
  std::vector<ParsedToolCall> out;
  size_t pos = 0;
  while ((pos = text.find(kOpen, pos)) != std::string::npos) {
    pos += kOpen.size();
    const size_t end = text.find(kClose, pos);
    const std::string body = text.substr(pos, end == std::string::npos ? std::string::npos : end - pos);
    ParsedToolCall call;
    // Model output: bound the nesting before nlohmann builds (and recursively destroys) the value.
    const auto j = json_depth(body) > 64 ? nlohmann::ordered_json() : nlohmann::ordered_json::parse(body, nullptr, false);
    if (j.is_object() && j.contains("name") && j["name"].is_string() && !j["name"].get_ref<const std::string&>().empty()) {
      call.name = j["name"].get<std::string>();
      const auto a = j.find("arguments");
      call.arguments = a == j.end() || a->is_null() ? "{}"
                       : a->is_string()             ? a->get<std::string>()
                                                    : a->dump(-1, ' ', false, json::error_handler_t::replace);
      call.complete = end != std::string::npos;
    }
    out.push_back(std::move(call));
    if (end == std::string::npos) break;
    pos = end + kClose.size();
  }
  return out;
}

std::vector<ParsedToolCall> parse_tool_calls(const std::string& text) {
  static const std::string kBegin = "<｜tool▁call▁begin｜>", kSep = "<｜tool▁sep｜>", kEnd = "<｜tool▁call▁end｜>";
  std::vector<ParsedToolCall> out;
  size_t pos = text.find(kToolCallsBegin);
  if (pos == std::string::npos) return out;
  while ((pos = text.find(kBegin, pos)) != std::string::npos) {
    pos += kBegin.size();
    const size_t sep = text.find(kSep, pos);
    if (sep == std::string::npos) break;
    size_t end = text.find(kEnd, sep);
    const bool complete = end != std::string::npos;
    if (!complete) end = text.size();
    const std::string head = text.substr(pos, sep - pos);
    std::string body = text.substr(sep + kSep.size(), end - sep - kSep.size());
    ParsedToolCall call;
    call.complete = complete;
    if (head == "function") {  // V3: NAME\n```json\nARGS\n```
      const size_t nl = body.find('\n');
      call.name = body.substr(0, nl);
      std::string args = nl == std::string::npos ? "" : body.substr(nl + 1);
      if (args.rfind("```json\n", 0) == 0) args = args.substr(8);
      else if (args.rfind("```\n", 0) == 0) args = args.substr(4);
      const size_t fence = args.rfind("```");
      if (fence != std::string::npos) args = args.substr(0, fence);
      while (!args.empty() && (args.back() == '\n' || args.back() == ' ')) args.pop_back();
      call.arguments = args;
    } else {
      call.name = head;
      call.arguments = body;
    }
    if (!call.name.empty()) out.push_back(std::move(call));
    pos = end;
  }
  return out;
}

}  // namespace ds::server
