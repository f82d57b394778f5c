// SPDX-License-Identifier: MIT
// The OpenAI-compatible HTTP server over a Scheduler: routes, auth, CORS, limits, SSE streaming, metrics.
#pragma once
#include <atomic>
#include <cstdint>
#include <memory>
#include <string>

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
  size_t max_body_bytes = 16u << 20;
  int read_timeout_s = 30;       // idle limit while reading a request
  int write_timeout_s = 30;      // idle limit while a client does not read
  int keep_alive_s = 5;
  int keep_alive_max = 100;
  int http_threads = 0;          // 0: parallel + queue + 16
  double heartbeat_s = 0.25;     // a waiting handler writes a heartbeat this often (detects gone clients)
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
