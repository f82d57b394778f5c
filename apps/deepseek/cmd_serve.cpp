// SPDX-License-Identifier: MIT
// `deepseek serve`: the OpenAI-compatible HTTP server (continuous batching, SSE streaming, reasoning output).
// SIGINT/SIGTERM: stop accepting, let running requests finish for --shutdown-grace seconds, cancel the rest, exit 0.
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <thread>

#include "apps/deepseek/cli_common.h"
#include "apps/deepseek/commands.h"
#include "base/error.h"
#include "runtime/scheduler.h"
#include "runtime/world.h"
#include "server/server.h"
#include "tokenizer/gguf_vocab.h"
#include "tokenizer/tokenizer.h"

namespace ds::app {

namespace {
volatile std::sig_atomic_t g_signal = 0;
extern "C" void on_signal(int sig) { g_signal = sig; }
}  // namespace

int cmd_serve(int argc, char** argv) {
  CLI::App app{"OpenAI-compatible HTTP server: /v1/chat/completions, /v1/completions (streaming and not), /v1/models[/ID], "
               "/health, /metrics, /tokenize, /detokenize. See docs/SERVER.md.",
               "deepseek serve"};
  std::string model, alias, tokenizer_dir;
  RandomModelFlags rm;
  bool no_prefix_cache = false;
  server::ServerOptions so;
  rt::SchedulerOptions sc;
  double grace = 5;
  int64_t max_body_mib = 16;
  ComputeFlags cf;
  app.add_option("-m,--model", model, "checkpoint folder (config.json, safetensors, tokenizer.json), or a .gguf file "
                 "(its embedded tokenizer unless a tokenizer.json sits beside it)");
  rm.add(app);
  app.add_option("--tokenizer", tokenizer_dir, "folder with tokenizer.json (+ tokenizer_config.json), or a .gguf file "
                 "whose tokenizer to use; default: the model's. Needed with --random-weights");
  app.add_option("--host", so.host, "address to listen on")->capture_default_str();
  app.add_option("--port", so.port, "port (0: any free port; the bound port is printed)")->capture_default_str();
  app.add_option("--alias", alias, "model id served by /v1/models (default: the folder name)");
  app.add_option("--chat-format", so.chat_format, "how chat messages become the prompt: auto (the tokenizer's chat "
                 "template; without one, DeepSeek-V3.2's encoding for a deepseek_v32 model), jinja, or dsv32 (V3.2's "
                 "encoding with any tokenizer)")
      ->check(CLI::IsMember({"auto", "jinja", "dsv32"}))
      ->capture_default_str();
  app.add_option("--parallel", sc.parallel, "slots: sequences computed together")->capture_default_str();
  app.add_option("--queue", sc.queue_max, "requests that may wait for a slot (beyond: 503)")->capture_default_str();
  app.add_option("--batch-tokens", sc.batch_tokens, "prompt tokens per step over all slots (chunked prefill)")->capture_default_str();
  app.add_option("--chunk", sc.chunk, "prefill chunk alignment (tokens)")->capture_default_str();
  app.add_option("--kv-cache-tokens", sc.kv_tokens, "KV cache pool size in tokens, shared by all slots "
                 "(default: parallel x ctx)");
  app.add_option("--kv-block-size", sc.block_size, "tokens per KV cache block (prefix reuse granularity)")
      ->capture_default_str();
  app.add_flag("--no-prefix-cache", no_prefix_cache, "do not reuse KV blocks of earlier prompts");
  std::string api_key_file;
  app.add_option("--api-key", so.api_key, "require this key (Authorization: Bearer KEY or X-Api-Key) on every route but /health "
                 "and the chat page; visible in `ps`: prefer --api-key-file or $DEEPSEEK_API_KEY");
  app.add_option("--api-key-file", api_key_file, "read the API key from the first line of this file (trimmed); keeps it "
                 "out of `ps`. Default: $DEEPSEEK_API_KEY (also kept out of `ps`)");
  app.add_option("--allowed-host", so.allowed_hosts, "also answer requests whose Host header names this (repeatable; with or "
                 "without :port). Bound to a loopback address only localhost, 127.0.0.1 and [::1] are answered besides "
                 "these (DNS rebinding); elsewhere Host is checked only when this is given");
  app.add_option("--cors-origin", so.cors_origin, "allow this browser origin (or *); default: no CORS headers");
  app.add_option("--max-body-mib", max_body_mib, "largest request body (MiB)")->capture_default_str();
  app.add_option("--max-tokens", so.limits.max_tokens, "largest max_tokens per request (default: the context size)");
  app.add_option("--max-n", so.limits.max_n, "largest n (choices per request)")->capture_default_str();
  int timeout = 30, read_timeout = 0, write_timeout = 0;
  app.add_option("--timeout", timeout, "default of --read-timeout and --write-timeout (seconds)")->capture_default_str();
  app.add_option("--read-timeout", read_timeout, "seconds a client has to send a whole request, headers and body "
                 "(default: --timeout)");
  app.add_option("--write-timeout", write_timeout, "seconds one write of a response may wait for a client that does not "
                 "read; then the connection is dropped and its generation cancelled (default: --timeout)");
  app.add_option("--keep-alive", so.keep_alive_s, "seconds an idle connection is kept open between requests")
      ->capture_default_str();
  app.add_option("--max-connections", so.max_connections, "open connections; beyond it new ones are closed at once")
      ->capture_default_str();
  app.add_option("--send-buffer-kib", so.send_buffer_kib, "kernel send buffer of each connection in KiB: bounds what a "
                 "client that stops reading pins, and how long it takes to notice (default 0: the kernel's autotuning)");
  app.add_option("--http-threads", so.http_threads, "workers that run request handlers; each streaming request holds one "
                 "(default: parallel + queue + 16)");
  app.add_option("--max-logprob-entries", so.max_logprob_entries, "largest non-streaming answer with logprobs: prompts x n "
                 "x max_tokens x (top_logprobs + 1) entries (0: no limit; streaming answers have none)")
      ->capture_default_str();
  app.add_option("--shutdown-grace", grace, "seconds running requests may finish after SIGINT/SIGTERM")->capture_default_str();
  cf.add(app);
  cf.add_draft(app);
  so.limits.max_tokens = 0;
  CLI11_PARSE(app, argc, argv);
  DS_CHECK(model.empty() != rm.config.empty(), "give either --model DIR or --config FILE --random-weights --tokenizer DIR");
  DS_CHECK(!model.empty() || !tokenizer_dir.empty(), "--random-weights needs --tokenizer DIR (a folder with tokenizer.json)");
  DS_CHECK(model.empty() || (rm.layers == 0 && !rm.random), "--layers and --random-weights go with --config");
  const rt::EngineOptions eo = cf.engine_options();  // flag errors before the tokenizer and the weights load
  sc.prefix_cache = !no_prefix_cache;
  sc.threads = cf.threads;
  if (!api_key_file.empty()) {
    DS_CHECK(so.api_key.empty(), "give --api-key or --api-key-file, not both");
    std::ifstream f(api_key_file);
    DS_CHECK(f.good(), "--api-key-file: cannot read ", api_key_file);
    std::getline(f, so.api_key);
    const auto b = so.api_key.find_first_not_of(" \t\r\n"), e = so.api_key.find_last_not_of(" \t\r\n");
    so.api_key = b == std::string::npos ? std::string() : so.api_key.substr(b, e - b + 1);
    DS_CHECK(!so.api_key.empty(), "--api-key-file: the first line of ", api_key_file, " is empty (expected the key)");
  }
  if (so.api_key.empty())
    if (const char* k = std::getenv("DEEPSEEK_API_KEY")) so.api_key = k;
  DS_CHECK(max_body_mib >= 1 && max_body_mib <= 1024, "--max-body-mib must be in [1, 1024]");
  DS_CHECK(so.limits.max_n >= 1 && so.limits.max_n <= 128, "--max-n must be in [1, 128]");
  so.read_timeout_s = read_timeout > 0 ? read_timeout : timeout;
  so.write_timeout_s = write_timeout > 0 ? write_timeout : timeout;
  DS_CHECK(timeout >= 1 && read_timeout >= 0 && write_timeout >= 0, "--timeout, --read-timeout and --write-timeout must be >= 1");
  DS_CHECK(so.keep_alive_s >= 1, "--keep-alive must be >= 1");
  DS_CHECK(so.max_connections >= 1, "--max-connections must be >= 1");
  DS_CHECK(so.send_buffer_kib >= 0 && so.send_buffer_kib <= 65536, "--send-buffer-kib must be in [0, 65536]");
  DS_CHECK(so.http_threads >= 0 && so.http_threads <= 4096, "--http-threads must be in [0, 4096]");
  DS_CHECK(so.port >= 0 && so.port <= 65535, "--port must be in [0, 65535]");
  so.max_body_bytes = size_t(max_body_mib) << 20;

  const tok::Tokenizer tokenizer = tok::load_tokenizer(tokenizer_dir.empty() ? model : tokenizer_dir);
  auto e = model.empty() ? rm.engine(eo, /*keep_mtp=*/true) : rt::Engine::load(model, eo);
  DS_CHECK(e->config().vocab_size >= int64_t(tokenizer.vocab_size()), "the tokenizer has ", tokenizer.vocab_size(),
           " tokens but the model's vocabulary only ", e->config().vocab_size);
  sc.ctx = cf.ctx > 0 ? cf.ctx : e->default_ctx();
  sc.draft = rt::resolve_draft(e->model(), cf.draft);
  if (so.limits.max_tokens <= 0) so.limits.max_tokens = sc.ctx;
  const std::string src = model.empty() ? rm.config : model;
  so.model_name = !alias.empty() ? alias : std::filesystem::path(src).lexically_normal().filename().string();
  if (so.model_name.empty()) so.model_name = std::filesystem::path(src).lexically_normal().parent_path().filename().string();
  if (!model.empty()) so.defaults = server::read_generation_defaults(model);

  std::signal(SIGPIPE, SIG_IGN);
  std::signal(SIGINT, on_signal);
  std::signal(SIGTERM, on_signal);
  if (!rt::is_root()) {  // under mpirun: rank 0 serves; the others run its steps on their shards until it stops
    rt::Scheduler::follow(*e);
    return 0;
  }
  rt::Scheduler sched(*e, sc);
  server::Server srv(*e, sched, tokenizer, so);
  const int port = srv.bind();
  const auto st = sched.stats();
  std::fprintf(stderr, "deepseek serve: model %s, %d slots x %lld tokens, KV pool %lld blocks x %lld tokens "
               "(%s, %.2f GB), MTP drafts per step %d, listening on http://%s:%d\n", so.model_name.c_str(), sc.parallel,
               (long long)sc.ctx, (long long)st.kv_blocks_total, (long long)st.kv_block_size, st.kv_dtype,
               double(st.kv_bytes_per_token) * double(st.kv_capacity_tokens) / 1e9, sc.draft, so.host.c_str(), port);
  std::fflush(stderr);
  std::thread watcher([&] {
    while (!g_signal) std::this_thread::sleep_for(std::chrono::milliseconds(50));
    std::fprintf(stderr, "deepseek serve: signal %d, shutting down\n", int(g_signal));
    srv.stop();
    const auto t0 = std::chrono::steady_clock::now();
    while (!sched.idle() && std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() < grace)
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    sched.cancel_all();
  });
  srv.serve();
  if (!g_signal) g_signal = SIGTERM;  // serve() ended on its own (e.g. the socket failed): let the watcher finish
  watcher.join();
  sched.shutdown();
  std::fprintf(stderr, "deepseek serve: stopped\n");
  return 0;
}

}  // namespace ds::app
