// SPDX-License-Identifier: MIT
#include "server/server.h"

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <malloc.h>
#include <mutex>
#include <optional>
#include <random>
#include <sstream>

#include "base/error.h"
#include "base/log.h"
#include "server/http.h"
#include "server/web_page.h"
#include "tokenizer/reasoning.h"
#include "tokenizer/stream_decoder.h"

namespace ds::server {

using Clock = std::chrono::steady_clock;

Defaults read_generation_defaults(const std::string& model_dir) {
  Defaults d;
  const auto gen = std::filesystem::path(model_dir) / "generation_config.json";
  if (model_dir.empty() || !std::filesystem::exists(gen)) return d;
  std::ifstream f(gen);
  const auto j = json::parse(f, nullptr, false);
  if (!j.is_object()) return d;
  if (j.contains("temperature") && j["temperature"].is_number()) {
    const double t = j["temperature"].get<double>();
    if (t >= 0 && t <= 2) d.temperature = float(t);
  }
  if (j.contains("top_p") && j["top_p"].is_number()) {
    const double p = j["top_p"].get<double>();
    if (p > 0 && p <= 1) d.top_p = float(p);
  }
  // Hugging Face semantics: "do_sample": false means greedy decoding by default.
  if (j.contains("do_sample") && j["do_sample"].is_boolean() && !j["do_sample"].get<bool>()) d.temperature = 0.0f;
  return d;
}

namespace {

bool ct_equal(const std::string& a, const std::string& b) {
  unsigned char diff = a.size() == b.size() ? 0 : 1;
  const size_t n = std::max(a.size(), b.size());
  for (size_t i = 0; i < n; ++i) {
    const unsigned char x = i < a.size() ? static_cast<unsigned char>(a[i]) : 0;
    const unsigned char y = i < b.size() ? static_cast<unsigned char>(b[i]) : 0;
    diff |= static_cast<unsigned char>(x ^ y);
  }
  return diff == 0;
}

std::string random_id(const char* prefix) {
  static std::mutex m;
  static std::mt19937_64 rng{std::random_device{}()};
  std::lock_guard<std::mutex> lk(m);
  char buf[32];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(rng()));
  return std::string(prefix) + buf;
}

json byte_array(const std::string& s) {
  json a = json::array();
  for (unsigned char ch : s) a.push_back(int(ch));
  return a;
}

// One choice of one HTTP request: the token stream turned into text, reasoning split, stop strings, tool calls.
struct Choice {
  std::shared_ptr<rt::GenRequest> req;
  std::unique_ptr<tok::ReasoningParser> rp;  // chat
  std::unique_ptr<tok::StreamDecoder> dec;   // completions
  std::string content, reasoning;            // all text so far (content truncated at a stop string)
  std::string echo;                          // completions with echo: the prompt text, before the content
  size_t content_sent = 0, reasoning_sent = 0;
  int64_t tokens = 0, reasoning_tokens = 0, cached = 0;
  bool done = false, role_sent = false;
  std::string finish_reason;
  json logprobs = json::array();             // chat, streaming: content entries since the last chunk
  std::string logprobs_text;                 // chat, not streaming: the entries serialised, comma-separated
  std::vector<rt::TokenEvent> lp_events;     // completions logprobs
  json tool_calls;                           // array when the model called tools
};

}  // namespace

// A response the routes build; sent whole unless the route streamed it itself (generate).
struct Response {
  int status = 200;
  HttpHeaders headers;
  std::string body;
  std::string_view static_body;  // used instead of body when set (the embedded page)
  void set_content(std::string b, const char* type) {
    body = std::move(b);
    headers.emplace_back("Content-Type", type);
  }
};

struct Server::Impl {
  rt::Engine& engine;
  rt::Scheduler& sched;
  const tok::Tokenizer& tok;
  std::optional<tok::ChatFormat> fmt;
  ServerOptions opt;
  ParseContext pc;
  std::unique_ptr<HttpServer> http;
  std::vector<std::string> allowed_hosts;  // lowercased; with the loopback names when bound to a loopback address
  bool check_host = false;
  std::mutex render_m;  // the template interpreter is not assumed thread-safe
  std::mutex metrics_m;
  std::map<std::string, uint64_t> http_requests;  // "route status" -> count
  std::atomic<bool> stopping{false};
  const int64_t created = std::chrono::duration_cast<std::chrono::seconds>(
                              std::chrono::system_clock::now().time_since_epoch()).count();

  Impl(rt::Engine& e, rt::Scheduler& s, const tok::Tokenizer& t, ServerOptions o)
      : engine(e), sched(s), tok(t), opt(std::move(o)) {
    fmt = tok::ChatFormat::select(tok, engine.config().model_type, opt.chat_format);
    pc.tok = &tok;
    pc.fmt = fmt ? &*fmt : nullptr;
    if (fmt) pc.tools = tool_support(*fmt);
    pc.model_name = opt.model_name;
    pc.vocab = engine.config().vocab_size;
    pc.ctx = sched.options().ctx;
    pc.limits = opt.limits;
    pc.defaults = opt.defaults;
    pc.json_vocab = std::make_shared<const TokenVocab>(tok, pc.vocab, engine.eos_ids());
    HttpOptions ho;
    ho.max_body_bytes = opt.max_body_bytes;
    ho.max_header_bytes = opt.max_header_bytes;
    ho.max_headers = opt.max_headers;
    ho.max_uri_bytes = opt.max_uri_bytes;
    ho.read_timeout_s = opt.read_timeout_s;
    ho.write_timeout_s = opt.write_timeout_s;
    ho.keep_alive_s = opt.keep_alive_s;
    ho.keep_alive_max = opt.keep_alive_max;
    ho.max_connections = opt.max_connections;
    ho.send_buffer_bytes = opt.send_buffer_kib * 1024;
    ho.threads = opt.http_threads > 0 ? opt.http_threads
                                      : sched.options().parallel + sched.options().queue_max + 16;
    ho.error_body = [this](int status, const std::string& msg) {
      const char* code = status == 413 ? "payload_too_large" : status == 431 ? "headers_too_large"
                         : status == 414 ? "uri_too_long" : status == 411 ? "length_required"
                         : status == 500 ? "" : "bad_request";
      count(status == 500 ? "error" : "other", status);
      return dump(error_body(msg, status == 500 ? "server_error" : "invalid_request_error", "", code));
    };
    http = std::make_unique<HttpServer>(ho, [this](const HttpRequest& req, HttpResponder& out) { handle(req, out); });
  }

  void count(const std::string& route, int status) {
    std::lock_guard<std::mutex> lk(metrics_m);
    ++http_requests[route + "\t" + std::to_string(status)];
  }

  static void send_error(Response& res, int status, const std::string& msg, const std::string& type,
                         const std::string& param = {}, const std::string& code = {}) {
    res.status = status;
    res.body = dump(error_body(msg, type, param, code));
    std::erase_if(res.headers, [](const auto& h) { return h.first == "Content-Type"; });
    res.headers.emplace_back("Content-Type", "application/json");
  }

  bool authorized(const HttpRequest& req) const {
    if (opt.api_key.empty()) return true;
    std::string key;
    const std::string auth = req.header("Authorization");
    if (auth.size() > 7 && (auth.compare(0, 7, "Bearer ") == 0 || auth.compare(0, 7, "bearer ") == 0))
      key = auth.substr(7);
    else
      key = req.header("X-Api-Key");
    return !key.empty() && ct_equal(key, opt.api_key);
  }

  // DNS rebinding: a page on evil.example whose name resolves to 127.0.0.1 reaches a loopback server from the
  // browser, with its own Host. Bound to loopback, only loopback names (and --allowed-host) are answered.
  bool host_allowed(const std::string& host_header) const {
    if (!check_host) return true;
    std::string h = host_header;
    std::transform(h.begin(), h.end(), h.begin(), [](unsigned char c) { return char(std::tolower(c)); });
    std::string name = h;  // without the port
    if (!h.empty() && h[0] == '[') {
      const size_t e = h.find(']');
      name = e == std::string::npos ? h : h.substr(0, e + 1);
    } else if (const size_t c = h.rfind(':'); c != std::string::npos) {
      name = h.substr(0, c);
    }
    return std::find(allowed_hosts.begin(), allowed_hosts.end(), name) != allowed_hosts.end() ||
           std::find(allowed_hosts.begin(), allowed_hosts.end(), h) != allowed_hosts.end();
  }

  void cors(const HttpRequest& req, Response& res) const {
    if (opt.cors_origin.empty()) return;
    const std::string origin = req.header("Origin");
    if (origin.empty()) return;
    if (opt.cors_origin == "*") res.headers.emplace_back("Access-Control-Allow-Origin", "*");
    else if (origin == opt.cors_origin)
      res.headers.emplace_back("Access-Control-Allow-Origin", origin), res.headers.emplace_back("Vary", "Origin");
    else return;
    res.headers.emplace_back("Access-Control-Allow-Methods", "GET, POST, OPTIONS");
    res.headers.emplace_back("Access-Control-Allow-Headers", "Authorization, Content-Type, X-Api-Key");
    res.headers.emplace_back("Access-Control-Max-Age", "600");
  }

  // Every request, on an HTTP worker: the checks every route shares, then the route; a route that did not stream
  // its answer gets `res` sent.
  void handle(const HttpRequest& req, HttpResponder& out) {
    Response res;
    try {
      if (pre_route(req, res)) route(req, res, out);
    } catch (const std::exception&) {
      res = Response{};
      send_error(res, 500, "internal error", "server_error");
      count("error", 500);
    }
    if (out.started()) return;
    const std::string_view body = res.static_body.data() ? res.static_body : std::string_view(res.body);
    out.send(res.status, res.headers, body);
  }

  // False when the request was answered here.
  bool pre_route(const HttpRequest& req, Response& res) {
    if (req.headers.size() > opt.max_headers) {  // the transport refuses these already; kept as a second line
      send_error(res, 431, "too many request headers", "invalid_request_error", "", "headers_too_large");
      count("other", 431);
      return false;
    }
    if (req.version >= 11 && !req.has_header("Host")) {  // RFC 9112 3.2: HTTP/1.1 requests carry Host
      send_error(res, 400, "an HTTP/1.1 request needs a Host header", "invalid_request_error", "Host", "missing_host");
      count("other", 400);
      return false;
    }
    if (req.has_header("Host") && !host_allowed(req.header("Host"))) {
      send_error(res, 403,
                 "the Host header does not name this server (allowed: localhost, 127.0.0.1, [::1] and --allowed-host "
                 "names)",
                 "invalid_request_error", "Host", "host_not_allowed");
      count("other", 403);
      return false;
    }
    cors(req, res);
    if (req.method == "OPTIONS") {
      if (!opt.cors_origin.empty()) res.status = 204;
      else send_error(res, 405, "method not allowed", "invalid_request_error");
      return false;
    }
    if (req.path != "/health" && !is_web_page(req.method, req.path) && !authorized(req)) {
      send_error(res, 401, "missing or invalid API key (Authorization: Bearer KEY or X-Api-Key: KEY)",
                 "authentication_error", "", "invalid_api_key");
      count("auth", 401);
      return false;
    }
    return true;
  }

  void route(const HttpRequest& req, Response& res, HttpResponder& out) {
    const bool get = req.method == "GET" || req.method == "HEAD", post = req.method == "POST";
    const std::string& p = req.path;
    if (get && is_web_page(req.method, p)) {
      WebPageResponse w = web_page(req);
      res.status = w.status;
      res.headers.insert(res.headers.end(), w.headers.begin(), w.headers.end());
      res.static_body = w.body;
      return count("/", w.status);
    }
    if (get && p == "/health") {
      if (stopping) return send_error(res, 503, "shutting down", "server_error");
      return res.set_content(R"({"status":"ok"})", "application/json");
    }
    if (get && p == "/v1/models") {
      res.set_content(dump(json{{"object", "list"}, {"data", json::array({model_object()})}}), "application/json");
      return count("/v1/models", 200);
    }
    if (get && p.size() > 11 && p.compare(0, 11, "/v1/models/") == 0) {
      if (p.substr(11) != opt.model_name) {
        send_error(res, 404, "The model does not exist; see GET /v1/models", "invalid_request_error", "model",
                   "model_not_found");
        return count("/v1/models/{id}", 404);
      }
      res.set_content(dump(model_object()), "application/json");
      return count("/v1/models/{id}", 200);
    }
    // Range is never honoured: every route answers 200 with the whole body (a multi-range request must not multiply
    // the body).
    if (get && p == "/metrics") return res.set_content(metrics(), "text/plain; version=0.0.4");
    if (post && p == "/tokenize") {
      return guarded("/tokenize", res, [&] {
        const json b = body_json(req);
        const json* c = b.contains("content") ? &b["content"] : (b.contains("text") ? &b["text"] : nullptr);
        if (!c || !c->is_string()) throw ApiError(400, "'content' must be a string", "content", "invalid_type");
        if (c->get_ref<const std::string&>().size() > size_t(sched.options().ctx) * 64)
          throw ApiError(400, "'content' is too long", "content");
        bool special = false;
        if (b.contains("add_special")) {
          if (!b["add_special"].is_boolean()) throw ApiError(400, "'add_special' must be a boolean", "add_special", "invalid_type");
          special = b["add_special"].get<bool>();
        }
        std::vector<int32_t> ids;
        if (special && tok.add_bos() && tok.bos_id() >= 0) ids.push_back(tok.bos_id());
        encode_text(tok, c->get_ref<const std::string&>(), false, ids, "content");
        res.set_content(dump(json{{"tokens", ids}}), "application/json");
      });
    }
    if (post && p == "/detokenize") {
      return guarded("/detokenize", res, [&] {
        const json b = body_json(req);
        if (!b.contains("tokens") || !b["tokens"].is_array())
          throw ApiError(400, "'tokens' must be an array of token ids", "tokens", "invalid_type");
        std::vector<int32_t> ids;
        for (const auto& t : b["tokens"]) {
          if (!t.is_number_integer() || (t.is_number_unsigned() ? t.get<uint64_t>() >= uint64_t(pc.vocab)
                                                                : (t.get<int64_t>() < 0 || t.get<int64_t>() >= pc.vocab)))
            throw ApiError(400, "'tokens' holds an id outside the vocabulary", "tokens");
          ids.push_back(int32_t(t.get<int64_t>()));
        }
        res.set_content(dump(json{{"content", tok.decode(ids)}}), "application/json");
      });
    }
    // The prompt a chat request renders to (tools included as the server passes them), as llama.cpp's route.
    if (post && p == "/apply-template") {
      return guarded("/apply-template", res, [&] {
        const json b = body_json(req);
        const auto ob = ordered_body(req, b, true);
        std::lock_guard<std::mutex> lk(render_m);
        res.set_content(dump(json{{"prompt", parse_chat(b, pc, ob ? &*ob : nullptr).prompt_text}}), "application/json");
      });
    }
    if (post && p == "/v1/chat/completions")
      return guarded("/v1/chat/completions", res, [&] { generate(req, res, out, true); });
    if (post && p == "/v1/completions")
      return guarded("/v1/completions", res, [&] { generate(req, res, out, false); });
    send_error(res, 404, "no such route", "invalid_request_error", "", "not_found");
    count("error", 404);
  }

  template <class F>
  void guarded(const std::string& route, Response& res, F&& f) {
    try {
      f();
      count(route, res.status > 0 ? res.status : 200);
    } catch (const ApiError& e) {
      send_error(res, e.status, e.what(), e.type, e.param, e.code);
      count(route, e.status);
    } catch (const std::bad_alloc&) {
      send_error(res, 503, "out of memory", "server_error");
      count(route, 503);
    } catch (const std::exception&) {
      send_error(res, 500, "internal error", "server_error");
      count(route, 500);
    }
  }

  json body_json(const HttpRequest& req) const {
    const std::string ct = req.header("Content-Type");
    if (!ct.empty() && ct.rfind("application/json", 0) != 0)
      throw ApiError(415, "Content-Type must be application/json", "", "unsupported_media_type");
    return parse_body(req.body, opt.limits.max_json_depth);
  }

  // The body again with its keys in order, when something prints the caller's JSON: a response_format schema (its
  // properties are generated in order) or, for the V3.2 encoder, the tools and the schema in the prompt.
  std::optional<nlohmann::ordered_json> ordered_body(const HttpRequest& req, const json& b, bool chat) const {
    const bool dsv32 = chat && fmt && fmt->kind() == tok::ChatFormatKind::Dsv32;
    if (!b.contains("response_format") && !(dsv32 && b.contains("tools"))) return std::nullopt;
    return nlohmann::ordered_json::parse(req.body);
  }

  json model_object() const {
    return {{"id", opt.model_name}, {"object", "model"}, {"created", created}, {"owned_by", "deepseek.cpp"},
            {"max_model_len", sched.options().ctx}};
  }

  void generate(const HttpRequest& req, Response& res, HttpResponder& out, bool chat);
  std::string metrics();
};

namespace {

// The state of one generation request while its response is written (lives in the content provider).
struct Generation {
  rt::Scheduler* sched = nullptr;
  const tok::Tokenizer* tok = nullptr;
  CompletionRequest cr;
  std::shared_ptr<rt::Channel> ch;
  std::vector<Choice> choices;
  std::string id, model;
  int64_t created = 0;
  double heartbeat_s = 0.25;

  void cancel_all() {
    for (auto& c : choices) c.req->cancel();
  }

  // Text that may still grow into a stop string or a tool-call marker is held back.
  size_t safe_end(const Choice& c) const {
    if (c.done) return c.content.size();
    size_t end = c.content.size();
    auto hold = [&](const std::string& s) {
      const size_t m = std::min(s.size() - 1, c.content.size());
      for (size_t k = m; k > 0; --k)
        if (c.content.compare(c.content.size() - k, k, s, 0, k) == 0) {
          end = std::min(end, c.content.size() - k);
          break;
        }
    };
    for (const auto& s : cr.stop) hold(s);
    if (cr.tools) end = std::min(end, tool_calls_safe_end(c.content, cr.tool_format));
    return std::max(end, c.content_sent);
  }

  void check_stop(Choice& c, size_t from) {
    size_t best = std::string::npos;
    for (const auto& s : cr.stop) {
      const size_t start = from >= s.size() ? from - s.size() + 1 : 0;
      const size_t p = c.content.find(s, start);
      if (p != std::string::npos) best = std::min(best, p);
    }
    if (best == std::string::npos) return;
    c.content.resize(std::max(best, c.content_sent));
    c.done = true;
    c.finish_reason = "stop";
    c.req->cancel();
  }

  void add_text(Choice& c, const tok::ReasoningDelta& d) {
    c.reasoning += d.reasoning;
    if (d.content.empty()) return;
    const size_t from = c.content.size();
    c.content += d.content;
    check_stop(c, from);
  }

  void on_token(Choice& c, const rt::TokenEvent& ev) {
    if (c.done) return;
    ++c.tokens;
    tok::ReasoningDelta d;
    if (c.rp) {
      const bool before = c.rp->in_reasoning();
      d = c.rp->push(ev.id);
      if (before || c.rp->in_reasoning()) ++c.reasoning_tokens;
    } else {
      d.content = c.dec->push(ev.id);
    }
    if (cr.logprobs) {
      if (cr.chat) {
        const std::string piece = tok->token_to_piece(ev.id);
        json top = json::array();
        for (const auto& [tid, lp] : ev.top) {
          const std::string p = tok->token_to_piece(tid);
          top.push_back({{"token", p}, {"logprob", lp}, {"bytes", byte_array(p)}});
        }
        json entry = {{"token", piece}, {"logprob", ev.logprob}, {"bytes", byte_array(piece)}, {"top_logprobs", top}};
        if (cr.stream) {
          c.logprobs.push_back(std::move(entry));
        } else {
          // Kept as text until the answer is written: a few times smaller than the JSON tree.
          if (!c.logprobs_text.empty()) c.logprobs_text += ',';
          c.logprobs_text += dump(entry);
        }
      } else {
        c.lp_events.push_back(ev);
      }
    }
    add_text(c, d);
  }

  void on_finish(Choice& c, rt::Finish f, bool& error) {
    if (!c.done) {
      tok::ReasoningDelta d;
      if (c.rp) d = c.rp->flush();
      else d.content = c.dec->flush();
      add_text(c, d);
    }
    if (!c.done) {
      c.done = true;
      c.finish_reason = f == rt::Finish::Length ? "length" : f == rt::Finish::Stop ? "stop" : "cancelled";
      if (f == rt::Finish::Error) error = true;
    }
    if (cr.tools) {
      const size_t p = tool_calls_start(c.content, cr.tool_format);
      if (p != std::string::npos) {
        const auto calls = parse_tool_calls(c.content.substr(p), cr.tool_format);
        // A call cut off (max_tokens, context) stays text with finish_reason "length": a half call is not a call.
        const bool whole = std::all_of(calls.begin(), calls.end(), [](const ParsedToolCall& t) { return t.complete; });
        if (!calls.empty() && whole) {
          c.tool_calls = json::array();
          for (size_t i = 0; i < calls.size(); ++i)
            c.tool_calls.push_back({{"index", i}, {"id", "call_" + random_id("")}, {"type", "function"},
                                    {"function", {{"name", calls[i].name}, {"arguments", calls[i].arguments}}}});
          c.content.resize(p);
          c.finish_reason = "tool_calls";
        }
      }
    }
  }

  json usage() const {
    int64_t comp = 0, reas = 0, prompt = 0, cached = 0;
    for (const auto& c : choices) comp += c.tokens, reas += c.reasoning_tokens;
    for (const auto& p : cr.prompts) prompt += int64_t(p.ids.size());
    // Each prompt counts once, whatever n: its first choice's cached tokens.
    for (size_t i = 0; i < choices.size(); i += size_t(cr.n)) cached += choices[i].cached;
    json u = {{"prompt_tokens", prompt}, {"completion_tokens", comp}, {"total_tokens", prompt + comp},
              {"prompt_tokens_details", {{"cached_tokens", cached}}}};
    if (cr.chat) u["completion_tokens_details"] = {{"reasoning_tokens", reas}};
    return u;
  }

  json completion_logprobs(const Choice& c) const {
    json toks = json::array(), lps = json::array(), tops = json::array(), offs = json::array();
    size_t off = 0;
    for (const auto& ev : c.lp_events) {
      const std::string p = tok->token_to_piece(ev.id);
      toks.push_back(p);
      lps.push_back(ev.logprob);
      json t = json::object();
      for (const auto& [tid, lp] : ev.top) t[tok->token_to_piece(tid)] = lp;
      tops.push_back(t);
      offs.push_back(off);
      off += p.size();
    }
    return {{"tokens", toks}, {"token_logprobs", lps}, {"top_logprobs", tops}, {"text_offset", offs}};
  }

  // The non-streaming answer, written piece by piece: choice by choice, each choice's logprobs freed once written, so
  // the whole body is never one string. Same bytes as dumping the whole object (keys in nlohmann's sorted order).
  bool write_final(HttpResponder& out) {
    if (!out.write("{\"choices\":[")) return false;
    for (size_t i = 0; i < choices.size(); ++i) {
      Choice& c = choices[i];
      std::string head = (i ? ",{" : "{") + std::string("\"finish_reason\":") + dump(json(c.finish_reason)) +
                         ",\"index\":" + std::to_string(i) + ",\"logprobs\":";
      json rest;
      if (cr.chat) {
        json msg = {{"role", "assistant"}, {"content", c.content}};
        if (!c.reasoning.empty() || c.reasoning_tokens > 0 || cr.opens_reasoning) msg["reasoning_content"] = c.reasoning;
        if (c.tool_calls.is_array()) {
          msg["tool_calls"] = c.tool_calls;
          if (c.content.empty()) msg["content"] = nullptr;
        }
        if (cr.logprobs) {
          if (!out.write(head + "{\"content\":[") || !out.write(c.logprobs_text)) return false;
          std::string().swap(c.logprobs_text);
          head = "]}";
        } else {
          head += "null";
        }
        if (!out.write(head + ",\"message\":" + dump(msg) + "}")) return false;
      } else {
        if (cr.logprobs) {
          if (!out.write(head) || !out.write(dump(completion_logprobs(c)))) return false;
          std::vector<rt::TokenEvent>().swap(c.lp_events);
          head.clear();
        } else {
          head += "null";
        }
        if (!out.write(head + ",\"text\":" + dump(json(c.echo + c.content)) + "}")) return false;
      }
    }
    json tail = {{"id", id}, {"object", cr.chat ? "chat.completion" : "text_completion"}, {"created", created},
                 {"model", model}, {"system_fingerprint", "deepseek.cpp"}, {"usage", usage()}};
    std::string t = dump(tail);
    t[0] = ',';  // "choices" sorts before every key of the rest
    return out.write("]" + t);
  }

  json chunk(json choices_arr) const {
    json j = {{"id", id}, {"object", cr.chat ? "chat.completion.chunk" : "text_completion"}, {"created", created},
              {"model", model}, {"system_fingerprint", "deepseek.cpp"}, {"choices", std::move(choices_arr)}};
    if (cr.include_usage) j["usage"] = nullptr;
    return j;
  }

  // Deltas of choice i since the last call (streaming); empty when nothing new.
  std::vector<json> deltas(size_t i, bool finishing) {
    Choice& c = choices[i];
    std::vector<json> out;
    const size_t end = safe_end(c);
    std::string text = end > c.content_sent ? c.content.substr(c.content_sent, end - c.content_sent) : "";
    c.content_sent = std::max(c.content_sent, end);
    std::string reas = c.reasoning.substr(c.reasoning_sent);
    c.reasoning_sent = c.reasoning.size();
    if (cr.chat) {
      if (!c.role_sent) {
        out.push_back({{"index", i}, {"delta", {{"role", "assistant"}, {"content", ""}}}, {"logprobs", nullptr},
                       {"finish_reason", nullptr}});
        c.role_sent = true;
      }
      if (!reas.empty() || !text.empty() || (finishing && c.tool_calls.is_array())) {
        json delta = json::object();
        if (!reas.empty()) delta["reasoning_content"] = reas;
        if (!text.empty()) delta["content"] = text;
        if (finishing && c.tool_calls.is_array()) delta["tool_calls"] = c.tool_calls;
        json lp = cr.logprobs ? json{{"content", c.logprobs}} : json();
        c.logprobs = json::array();
        out.push_back({{"index", i}, {"delta", delta}, {"logprobs", lp}, {"finish_reason", nullptr}});
      }
      if (finishing)
        out.push_back({{"index", i}, {"delta", json::object()}, {"logprobs", nullptr}, {"finish_reason", c.finish_reason}});
    } else {
      if (!c.echo.empty()) text = std::move(c.echo) + text, c.echo.clear();  // the first chunk carries the echo
      if (!text.empty() || finishing) {
        json lp = cr.logprobs ? completion_logprobs(c) : json();
        c.lp_events.clear();
        out.push_back({{"index", i}, {"text", text}, {"logprobs", lp},
                       {"finish_reason", finishing ? json(c.finish_reason) : json()}});
      }
    }
    return out;
  }

  // Writes the response body (headers were sent); false when the client went away (every choice then cancelled).
  bool run(HttpResponder& sink) {
    auto write = [&](const std::string& s) { return sink.write(s); };
    auto last_write = Clock::now();
    std::vector<bool> reported(choices.size(), false);
    bool error = false;
    std::unique_lock<std::mutex> lk(ch->m);
    while (true) {
      std::vector<std::vector<rt::TokenEvent>> evs(choices.size());
      std::vector<rt::Finish> fins(choices.size(), rt::Finish::None);
      bool any = false;
      for (size_t i = 0; i < choices.size(); ++i) {
        auto& r = *choices[i].req;
        choices[i].cached = r.cached_tokens;
        if (!r.events.empty()) {
          evs[i].assign(std::make_move_iterator(r.events.begin()), std::make_move_iterator(r.events.end()));
          r.events.clear();
          any = true;
        }
        fins[i] = r.finish;
        if (fins[i] != rt::Finish::None && !reported[i]) any = true;
      }
      if (!any) {
        if (ch->cv.wait_for(lk, std::chrono::duration<double>(heartbeat_s)) == std::cv_status::timeout) {
          lk.unlock();
          if (std::chrono::duration<double>(Clock::now() - last_write).count() >= heartbeat_s) {
            if (!write(cr.stream ? ": keep-alive\n\n" : " ")) {
              cancel_all();
              return false;
            }
            last_write = Clock::now();
          }
          lk.lock();
        }
        continue;
      }
      lk.unlock();
      std::string out;
      bool all_done = true;
      for (size_t i = 0; i < choices.size(); ++i) {
        Choice& c = choices[i];
        for (const auto& ev : evs[i]) on_token(c, ev);
        bool finishing = false;
        if (fins[i] != rt::Finish::None && !reported[i]) {
          on_finish(c, fins[i], error);
          reported[i] = finishing = true;
        } else if (c.done && !reported[i]) {
          // Stopped by a stop string: the scheduler confirms with Cancelled; report now.
          on_finish(c, rt::Finish::Stop, error);
          reported[i] = finishing = true;
        }
        if (!reported[i]) all_done = false;
        if (cr.stream)
          for (auto& d : deltas(i, finishing)) out += "data: " + dump(chunk(json::array({d}))) + "\n\n";
      }
      if (all_done) {
        if (cr.stream) {
          if (error) out += "data: " + dump(error_body("generation failed", "server_error")) + "\n\n";
          if (cr.include_usage) {
            json u = chunk(json::array());
            u["usage"] = usage();
            out += "data: " + dump(u) + "\n\n";
          }
          out += "data: [DONE]\n\n";
        } else if (error) {
          out += dump(error_body("generation failed", "server_error"));
        }
      }
      // A client that went away is only noticed by a failing write: a non-streaming response writes a heartbeat
      // (JSON allows leading whitespace) while tokens arrive, too.
      if (out.empty() && !cr.stream && std::chrono::duration<double>(Clock::now() - last_write).count() >= heartbeat_s)
        out = " ";
      if (!out.empty()) {
        if (!write(out)) {
          cancel_all();
          return false;
        }
        last_write = Clock::now();
      }
      if (all_done) {
        if (!cr.stream && !error && !write_final(sink)) {
          cancel_all();
          return false;
        }
        return sink.finish();
      }
      lk.lock();
    }
  }
};

}  // namespace

void Server::Impl::generate(const HttpRequest& req, Response& res, HttpResponder& out, bool chat) {
  if (stopping) throw ApiError(503, "the server is shutting down", "", "shutting_down", "server_error");
  const json b = body_json(req);
  const auto ob = ordered_body(req, b, chat);
  auto g = std::make_shared<Generation>();
  {
    std::lock_guard<std::mutex> lk(render_m);
    g->cr = chat ? parse_chat(b, pc, ob ? &*ob : nullptr) : parse_completion(b, pc);
  }
  if (b.contains("response_format")) parse_response_format(*ob, pc, g->cr);
  g->sched = &sched;
  g->tok = &tok;
  g->ch = std::make_shared<rt::Channel>();
  g->id = random_id(chat ? "chatcmpl-" : "cmpl-");
  g->model = opt.model_name;
  g->created = std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
  g->heartbeat_s = opt.heartbeat_s;
  // Choice k = prompt i * n + j, as OpenAI numbers them; choice j of every prompt samples with seed + j.
  const size_t n_choices = g->cr.prompts.size() * size_t(g->cr.n);
  if (n_choices > size_t(sched.options().parallel + sched.options().queue_max))
    throw ApiError(400,
                   "the request asks for " + std::to_string(n_choices) + " choices (prompts x n); the server holds " +
                       std::to_string(sched.options().parallel + sched.options().queue_max) + " (--parallel + --queue)",
                   g->cr.prompts.size() > 1 ? "prompt" : "n");
  // A non-streaming answer is held until its last token; with logprobs its size is about the number of logprob
  // entries (about 75 bytes each), so that number is bounded up front. Streaming answers are written as they come.
  if (!g->cr.stream && g->cr.logprobs && opt.max_logprob_entries > 0) {
    uint64_t entries = 0;
    for (const auto& p : g->cr.prompts)
      entries += uint64_t(p.max_tokens) * uint64_t(g->cr.n) * uint64_t(g->cr.top_logprobs + 1);
    if (entries > opt.max_logprob_entries) {
      const std::string top = chat ? "top_logprobs" : "logprobs";
      throw ApiError(400,
                     "a non-streaming answer with logprobs may hold at most " +
                         std::to_string(opt.max_logprob_entries) + " entries (prompts x n x max_tokens x (" + top +
                         " + 1)); this request asks for " + std::to_string(entries) +
                         ": lower n, max_tokens or " + top + ", or set stream: true",
                     "max_tokens", "response_too_large");
    }
  }
  try {
    for (const auto& prompt : g->cr.prompts)
      for (int j = 0; j < g->cr.n; ++j) {
        rt::GenParams p = g->cr.gen;
        p.sampling.seed += uint64_t(j);
        p.max_tokens = prompt.max_tokens;
        Choice c;
        c.req = sched.submit(prompt.ids, p, g->ch);
        if (chat) c.rp = std::make_unique<tok::ReasoningParser>(tok, g->cr.opens_reasoning);
        else c.dec = std::make_unique<tok::StreamDecoder>(tok);
        c.echo = prompt.echo;
        g->choices.push_back(std::move(c));
      }
  } catch (const rt::QueueFull&) {
    g->cancel_all();
    throw ApiError(503, "the server is busy (request queue full); retry later", "", "overloaded", "server_error");
  } catch (const ds::Error& e) {
    g->cancel_all();
    throw ApiError(400, e.what(), "", "invalid_value");
  }
  res.headers.emplace_back("Cache-Control", "no-cache");
  res.headers.emplace_back("Content-Type", g->cr.stream ? "text/event-stream" : "application/json; charset=utf-8");
  // The handler streams: the body is written as tokens arrive (a heartbeat while none do), so it runs on this worker
  // until the last token or until the client is gone (a failed or timed-out write cancels every choice).
  const bool large = g->cr.logprobs && !g->cr.stream;
  if (out.begin(200, res.headers)) g->run(out);
  g->cancel_all();
  g.reset();
#ifdef __GLIBC__
  // A large answer leaves its pages in malloc's arenas; hand them back so RSS does not ratchet up request by request.
  if (large) malloc_trim(0);
#endif

}

std::string Server::Impl::metrics() {
  const rt::SchedulerStats s = sched.stats();
  std::ostringstream o;
  auto gauge = [&](const char* name, const char* help, double v, const char* type = "gauge") {
    o << "# HELP " << name << ' ' << help << "\n# TYPE " << name << ' ' << type << '\n' << name << ' ' << v << '\n';
  };
  auto hist = [&](const char* name, const char* help, const rt::Histogram& h) {
    o << "# HELP " << name << ' ' << help << "\n# TYPE " << name << " histogram\n";
    uint64_t acc = 0;
    for (size_t i = 0; i < rt::Histogram::kBounds.size(); ++i) {
      acc += h.counts[i];
      o << name << "_bucket{le=\"" << rt::Histogram::kBounds[i] << "\"} " << acc << '\n';
    }
    acc += h.counts.back();
    o << name << "_bucket{le=\"+Inf\"} " << acc << '\n' << name << "_sum " << h.sum << '\n' << name << "_count " << h.n << '\n';
  };
  gauge("deepseek_requests_submitted_total", "generation requests accepted by the scheduler (one per choice)",
        double(s.requests_submitted), "counter");
  gauge("deepseek_requests_rejected_total", "requests refused because the queue was full", double(s.requests_rejected), "counter");
  o << "# HELP deepseek_requests_finished_total finished requests by reason\n# TYPE deepseek_requests_finished_total counter\n"
    << "deepseek_requests_finished_total{reason=\"stop\"} " << s.finished_stop << '\n'
    << "deepseek_requests_finished_total{reason=\"length\"} " << s.finished_length << '\n'
    << "deepseek_requests_finished_total{reason=\"cancelled\"} " << s.finished_cancelled << '\n'
    << "deepseek_requests_finished_total{reason=\"error\"} " << s.finished_error << '\n';
  gauge("deepseek_prompt_tokens_total", "prompt tokens of admitted requests", double(s.prompt_tokens), "counter");
  gauge("deepseek_prompt_tokens_computed_total", "prompt tokens run through the model", double(s.prompt_tokens_computed), "counter");
  gauge("deepseek_prefix_cache_hit_tokens_total", "prompt tokens whose KV rows were reused", double(s.prefix_hit_tokens), "counter");
  gauge("deepseek_generation_tokens_total", "generated tokens", double(s.generated_tokens), "counter");
  gauge("deepseek_queue_depth", "requests waiting for a slot", double(s.queue_depth));
  gauge("deepseek_slots_active", "slots running a request", double(s.active_slots));
  gauge("deepseek_slots_total", "slots (--parallel)", double(s.slots));
  gauge("deepseek_prefix_cache_hit_requests_total", "admitted requests that reused at least one KV block",
        double(s.prefix_hit_requests), "counter");
  gauge("deepseek_kv_cache_used_tokens", "KV rows held by running requests (their lengths)", double(s.kv_used_tokens));
  gauge("deepseek_kv_cache_cached_tokens", "KV rows in cached blocks: reusable prefixes no running request holds",
        double(s.kv_cached_tokens));
  gauge("deepseek_kv_cache_capacity_tokens", "KV rows in the pool (--kv-cache-tokens)", double(s.kv_capacity_tokens));
  gauge("deepseek_kv_cache_block_size", "tokens per KV block", double(s.kv_block_size));
  gauge("deepseek_kv_cache_bytes_per_token", "bytes of KV cache one token takes (every cache layer, --kv-dtype format)",
        double(s.kv_bytes_per_token));
  o << "# HELP deepseek_kv_cache_info how KV cache rows are stored (--kv-dtype)\n# TYPE deepseek_kv_cache_info gauge\n"
    << "deepseek_kv_cache_info{dtype=\"" << s.kv_dtype << "\"} 1\n";
  gauge("deepseek_kv_cache_blocks_total", "KV blocks in the pool", double(s.kv_blocks_total));
  gauge("deepseek_kv_cache_blocks_used", "KV blocks referenced by running requests (shared blocks count once)",
        double(s.kv_blocks_used));
  gauge("deepseek_kv_cache_blocks_cached", "unreferenced published KV blocks kept for prefix reuse (evicted LRU)",
        double(s.kv_blocks_cached));
  gauge("deepseek_kv_cache_evictions_total", "cached KV blocks evicted to make room", double(s.kv_evictions), "counter");
  gauge("deepseek_kv_cache_full_stops_total", "sequences ended (finish_reason length): alone, they outgrew the pool",
        double(s.kv_full_stops), "counter");
  gauge("deepseek_kv_cache_preemptions_total", "running sequences swapped out to host memory to free blocks",
        double(s.kv_preemptions), "counter");
  gauge("deepseek_kv_cache_swapped_requests", "sequences swapped out now, waiting for blocks",
        double(s.kv_swapped_requests));
  gauge("deepseek_kv_cache_usage_ratio", "blocks used / blocks total",
        s.kv_blocks_total ? double(s.kv_blocks_used) / double(s.kv_blocks_total) : 0.0);
  gauge("deepseek_scheduler_steps_total", "batched forward steps", double(s.steps), "counter");
  gauge("deepseek_forward_seconds_total", "time in Model::forward", s.forward_seconds, "counter");
  gauge("deepseek_scheduler_overhead_seconds_total", "step time outside Model::forward (batching, sampling, delivery)",
        s.overhead_seconds, "counter");
  gauge("deepseek_scheduler_overhead_us_per_step", "mean scheduler overhead per step (microseconds)",
        s.steps ? s.overhead_seconds * 1e6 / double(s.steps) : 0.0);
  gauge("deepseek_forward_us_per_step", "mean forward time per step (microseconds)",
        s.steps ? s.forward_seconds * 1e6 / double(s.steps) : 0.0);
  gauge("deepseek_scheduler_pick_seconds_total", "part of the overhead spent choosing tokens (argmax, sampling, logprobs)",
        s.pick_seconds, "counter");
  gauge("deepseek_decode_steps_total", "steps with no prompt tokens (pure decode)", double(s.decode_steps), "counter");
  gauge("deepseek_decode_forward_seconds_total", "Model::forward time of pure decode steps", s.decode_forward_seconds,
        "counter");
  gauge("deepseek_decode_overhead_seconds_total", "overhead of pure decode steps", s.decode_overhead_seconds, "counter");
  gauge("deepseek_decode_overhead_us_per_step", "mean scheduler overhead per pure decode step (microseconds)",
        s.decode_steps ? s.decode_overhead_seconds * 1e6 / double(s.decode_steps) : 0.0);
  gauge("deepseek_decode_overhead_ratio", "overhead / (forward + overhead) over pure decode steps",
        s.decode_forward_seconds + s.decode_overhead_seconds > 0
            ? s.decode_overhead_seconds / (s.decode_forward_seconds + s.decode_overhead_seconds) : 0.0);
  gauge("deepseek_spec_verify_steps_total", "speculative verify chunks (one per decoding sequence and step with drafts)",
        double(s.spec.steps), "counter");
  gauge("deepseek_spec_draft_tokens_total", "MTP draft tokens verified", double(s.spec.drafted), "counter");
  gauge("deepseek_spec_accepted_tokens_total", "MTP draft tokens accepted", double(s.spec.accepted), "counter");
  gauge("deepseek_spec_acceptance_ratio", "accepted / drafted", s.spec.acceptance());
  gauge("deepseek_spec_tokens_per_step", "mean tokens a verify chunk yields (accepted drafts + the model's own)",
        s.spec.tokens_per_step());
  o << "# HELP deepseek_spec_accepted_by_position_total accepted drafts by draft position (1 = the token after "
       "next)\n# TYPE deepseek_spec_accepted_by_position_total counter\n";
  for (int k = 0; k < rt::kMaxDraft; ++k)
    o << "deepseek_spec_accepted_by_position_total{position=\"" << k + 1 << "\"} " << s.spec.accepted_at[size_t(k)]
      << '\n';
  o << "# HELP deepseek_spec_drafted_by_position_total drafts verified by draft position\n"
       "# TYPE deepseek_spec_drafted_by_position_total counter\n";
  for (int k = 0; k < rt::kMaxDraft; ++k)
    o << "deepseek_spec_drafted_by_position_total{position=\"" << k + 1 << "\"} " << s.spec.drafted_at[size_t(k)]
      << '\n';
  hist("deepseek_time_to_first_token_seconds", "submit to first generated token", s.ttft);
  hist("deepseek_inter_token_latency_seconds", "time between consecutive tokens of a request", s.itl);
  {
    std::lock_guard<std::mutex> lk(metrics_m);
    o << "# HELP deepseek_http_requests_total HTTP requests by route and status\n# TYPE deepseek_http_requests_total counter\n";
    for (const auto& [k, v] : http_requests) {
      const size_t tab = k.find('\t');
      o << "deepseek_http_requests_total{route=\"" << k.substr(0, tab) << "\",status=\"" << k.substr(tab + 1) << "\"} " << v << '\n';
    }
  }
  return o.str();
}

Server::Server(rt::Engine& engine, rt::Scheduler& sched, const tok::Tokenizer& tok, ServerOptions opt)
    : impl_(std::make_unique<Impl>(engine, sched, tok, std::move(opt))) {}

Server::~Server() = default;

int Server::bind() {
  Impl& m = *impl_;
  const int port = m.http->bind(m.opt.host, m.opt.port);
  // Host check: always when bound to loopback (DNS rebinding), elsewhere only when --allowed-host names are given.
  for (std::string h : m.opt.allowed_hosts) {
    std::transform(h.begin(), h.end(), h.begin(), [](unsigned char c) { return char(std::tolower(c)); });
    m.allowed_hosts.push_back(h);
  }
  if (m.http->loopback()) {
    m.check_host = true;
    for (const char* h : {"localhost", "127.0.0.1", "[::1]"}) m.allowed_hosts.emplace_back(h);
  } else {
    m.check_host = !m.opt.allowed_hosts.empty();
    if (m.opt.api_key.empty())
      std::fprintf(stderr,
                   "deepseek serve: WARNING: %s is not a loopback address and no API key is set: anyone who can reach "
                   "port %d can use this server (set --api-key-file FILE or DEEPSEEK_API_KEY)\n",
                   m.opt.host.c_str(), port);
  }
  return port;
}

void Server::serve() { impl_->http->serve(); }

void Server::stop() {
  impl_->stopping = true;
  impl_->http->stop();
}

}  // namespace ds::server
