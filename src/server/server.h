// SPDX-License-Identifier: MIT
// The OpenAI-compatible HTTP server over a Scheduler: routes, auth, CORS, limits, SSE streaming, metrics.
#pragma once
#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "runtime/engine.h"
#include "runtime/scheduler.h"
#include "server/openai.h"
#include "tokenizer/chat_template.h"
#include "tokenizer/tokenizer.h"

namespace ds::server {

struct ServerOptions {
  std::string host = "127.0.0.1";
  int port = 8080;               // 0: any free port (the bound port is printed)
  std::string api_key;           // empty: no auth
  std::string cors_origin;       // empty: no CORS headers at all
  std::string model_name;        // the id served by /v1/models and accepted in "model"
  // How chat messages become the prompt (tok::ChatFormat::select): auto (the tokenizer's Jinja template; without one,
  // DeepSeek-V3.2's encoder when the model's model_type is deepseek_v32), jinja, or dsv32.
  std::string chat_format = "auto";
  // Host header names answered besides the loopback ones (checked always when bound to a loopback address, else
  // only when this is not empty); with or without a port.
  std::vector<std::string> allowed_hosts;
  // Transport limits (server/http.h): body however framed, header section, header count, URI.
  size_t max_body_bytes = 16u << 20;
  size_t max_header_bytes = 64u << 10;
  size_t max_headers = 100;
  size_t max_uri_bytes = 8u << 10;
  int read_timeout_s = 30;       // a whole request (headers and body), from its first byte
  int write_timeout_s = 30;      // one write; a client that does not read for this long is dropped
  int keep_alive_s = 5;
  int keep_alive_max = 100;
  int max_connections = 512;     // open connections; beyond it new ones are closed at once
  int send_buffer_kib = 0;       // kernel send buffer per connection (0: autotuned): what a non-reading client pins
  int http_threads = 0;          // handler workers; 0: parallel + queue + 16
  double heartbeat_s = 0.25;     // a waiting handler writes a heartbeat this often (detects gone clients)
  // A non-streaming answer with logprobs may hold at most this many entries: prompts x n x max_tokens x
  // (top_logprobs + 1) (about 75 bytes each in the response); 0: no limit.
  uint64_t max_logprob_entries = 1u << 19;
  Limits limits;
  Defaults defaults;
};

class Server {
 public:
  Server(rt::Engine& engine, rt::Scheduler& sched, const tok::Tokenizer& tok, ServerOptions opt);
  ~Server();
  // Binds (throws ds::Error on failure) and returns the port.
  int bind();
  // Serves until stop(); returns when every handler has finished.
  void serve();
  void stop();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Reads generation_config.json defaults (temperature, top_p) from a model folder when present.
Defaults read_generation_defaults(const std::string& model_dir);

}  // namespace ds::server
