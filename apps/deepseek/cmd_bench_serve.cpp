// SPDX-License-Identifier: MIT
// `deepseek bench-serve`: a load generator for a running `deepseek serve`. C concurrent clients send streaming
// /v1/completions requests (random token-id prompts, ignore_eos so every request generates exactly --max-tokens) and
// report request throughput, output tokens/s, time to first token, time per output token and inter-chunk latency
// percentiles, plus the server's own scheduler overhead from /metrics.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <mutex>
#include <random>
#include <thread>

#include <nlohmann/json.hpp>

#include "apps/deepseek/cli_common.h"
#include "apps/deepseek/commands.h"
#include "base/error.h"
#include "server/http.h"

namespace ds::app {

namespace {
using Clock = std::chrono::steady_clock;

double pct(std::vector<double> v, double q) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const size_t i = std::min(v.size() - 1, size_t(q * double(v.size() - 1) + 0.5));
  return v[i];
}

double metric(const std::string& text, const std::string& name) {
  size_t p = 0;
  while ((p = text.find(name, p)) != std::string::npos) {
    if ((p == 0 || text[p - 1] == '\n') && p + name.size() < text.size() && text[p + name.size()] == ' ')
      return std::atof(text.c_str() + p + name.size() + 1);
    p += name.size();
  }
  return 0;
}
}  // namespace

int cmd_bench_serve(int argc, char** argv) {
  CLI::App app{"Load-test a running deepseek serve: throughput, TTFT and inter-token latency percentiles.",
               "deepseek bench-serve"};
  std::string host = "127.0.0.1", api_key, model;
  int port = 8080, concurrency = 8, requests = 0, prompt_tokens = 64, max_tokens = 32;
  int64_t vocab = 32000, vocab_low = 1000;
  bool json_out = false;
  double temperature = 0, top_p = 1;
  app.add_option("--host", host)->capture_default_str();
  app.add_option("--port", port)->capture_default_str();
  app.add_option("--api-key", api_key, "API key (Authorization: Bearer)");
  app.add_option("-c,--concurrency", concurrency, "concurrent streams")->capture_default_str();
  app.add_option("-n,--requests", requests, "requests in all (default: 4 x concurrency)");
  app.add_option("--prompt-tokens", prompt_tokens, "prompt length (random token ids)")->capture_default_str();
  app.add_option("--max-tokens", max_tokens, "tokens generated per request")->capture_default_str();
  app.add_option("--vocab", vocab, "token ids are drawn from [low, vocab)")->capture_default_str();
  app.add_option("--vocab-low", vocab_low, "the lowest token id drawn (ids below it are often special tokens)")
      ->capture_default_str();
  app.add_option("--temperature", temperature, "sampling temperature (0: greedy)")->capture_default_str();
  app.add_option("--top-p", top_p, "nucleus sampling mass")->capture_default_str();
  app.add_flag("--json", json_out, "one JSON object instead of a table");
  CLI11_PARSE(app, argc, argv);
  DS_CHECK(concurrency >= 1 && concurrency <= 1024, "--concurrency must be in [1, 1024]");
  if (requests <= 0) requests = 4 * concurrency;
  DS_CHECK(vocab_low >= 0 && vocab > vocab_low, "--vocab must be > --vocab-low (", vocab_low, ")");

  server::HttpHeaders hdr;
  if (!api_key.empty()) hdr.emplace_back("Authorization", "Bearer " + api_key);
  auto scrape = [&] {
    std::string body;
    const int st = server::http_request(host, port, "GET", "/metrics", hdr, "",
                                        [&](std::string_view d) { body.append(d.data(), d.size()); });
    return st == 200 ? body : std::string();
  };
  const std::string m0 = scrape();
  DS_CHECK(!m0.empty(), "no server answering /metrics at ", host, ":", port);

  std::atomic<int> next{0}, failed{0};
  std::mutex mu;
  std::vector<double> ttft, tpot, itl;
  int64_t out_tokens = 0;
  const auto t0 = Clock::now();
  auto worker = [&](int wid) {
    std::mt19937 rng(uint32_t(1234 + wid));
    while (true) {
      const int i = next++;
      if (i >= requests) break;
      nlohmann::json prompt = nlohmann::json::array();
      for (int k = 0; k < prompt_tokens; ++k) prompt.push_back(vocab_low + int64_t(rng() % uint32_t(vocab - vocab_low)));
      const nlohmann::json body = {{"prompt", prompt}, {"max_tokens", max_tokens}, {"temperature", temperature}, {"top_p", top_p},
                                   {"ignore_eos", true}, {"stream", true},
                                   {"stream_options", {{"include_usage", true}}}};
      server::HttpHeaders h = hdr;
      h.emplace_back("Content-Type", "application/json");
      std::string buf;
      std::vector<Clock::time_point> chunks;
      int64_t toks = 0;
      const auto ts = Clock::now();
      auto receive = [&](std::string_view d) {
        buf.append(d.data(), d.size());
        size_t p;
        while ((p = buf.find("\n\n")) != std::string::npos) {
          const std::string ev = buf.substr(0, p);
          buf.erase(0, p + 2);
          if (ev.rfind("data: ", 0) != 0 || ev == "data: [DONE]") continue;
          const auto j = nlohmann::json::parse(ev.substr(6), nullptr, false);
          if (j.is_discarded()) continue;
          if (j.contains("usage") && j["usage"].is_object()) toks = j["usage"]["completion_tokens"].get<int64_t>();
          if (j.contains("choices") && !j["choices"].empty() && j["choices"][0]["text"].is_string() &&
              !j["choices"][0]["text"].get<std::string>().empty())
            chunks.push_back(Clock::now());
        }
      };
      if (server::http_request(host, port, "POST", "/v1/completions", h, body.dump(), receive) != 200 ||
          chunks.empty()) {
        ++failed;
        continue;
      }
      std::lock_guard<std::mutex> lk(mu);
      ttft.push_back(std::chrono::duration<double>(chunks.front() - ts).count() * 1e3);
      if (toks > 1) tpot.push_back(std::chrono::duration<double>(chunks.back() - chunks.front()).count() * 1e3 / double(toks - 1));
      for (size_t k = 1; k < chunks.size(); ++k) itl.push_back(std::chrono::duration<double>(chunks[k] - chunks[k - 1]).count() * 1e3);
      out_tokens += toks;
    }
  };
  std::vector<std::thread> th;
  for (int w = 0; w < concurrency; ++w) th.emplace_back(worker, w);
  for (auto& t : th) t.join();
  const double wall = std::chrono::duration<double>(Clock::now() - t0).count();
  const std::string m1 = scrape();
  const double steps = metric(m1, "deepseek_scheduler_steps_total") - metric(m0, "deepseek_scheduler_steps_total");
  const double ovh = metric(m1, "deepseek_scheduler_overhead_seconds_total") - metric(m0, "deepseek_scheduler_overhead_seconds_total");
  const double fwd = metric(m1, "deepseek_forward_seconds_total") - metric(m0, "deepseek_forward_seconds_total");
  const double ovh_us = steps > 0 ? ovh * 1e6 / steps : 0, fwd_us = steps > 0 ? fwd * 1e6 / steps : 0;
  auto delta = [&](const char* name) { return metric(m1, name) - metric(m0, name); };
  const double pick_us = steps > 0 ? delta("deepseek_scheduler_pick_seconds_total") * 1e6 / steps : 0;
  // Pure decode steps (no prompt chunk): the steady state the 5% target is about.
  const double dsteps = delta("deepseek_decode_steps_total");
  const double d_ovh_us = dsteps > 0 ? delta("deepseek_decode_overhead_seconds_total") * 1e6 / dsteps : 0;
  const double d_fwd_us = dsteps > 0 ? delta("deepseek_decode_forward_seconds_total") * 1e6 / dsteps : 0;
  const double d_pct = d_fwd_us + d_ovh_us > 0 ? 100 * d_ovh_us / (d_fwd_us + d_ovh_us) : 0;
  // Speculation (servers with --draft > 0): drafts and acceptance over this run.
  const double sp_steps = delta("deepseek_spec_verify_steps_total"), sp_drafted = delta("deepseek_spec_draft_tokens_total");
  const double sp_accepted = delta("deepseek_spec_accepted_tokens_total");
  const int ok = requests - failed.load();
  nlohmann::json r = {{"concurrency", concurrency}, {"requests", ok}, {"failed", failed.load()},
                      {"prompt_tokens", prompt_tokens}, {"max_tokens", max_tokens}, {"temperature", temperature},
                      {"top_p", top_p}, {"wall_s", wall},
                      {"req_per_s", ok / wall}, {"output_tok_per_s", double(out_tokens) / wall},
                      {"ttft_ms", {{"p50", pct(ttft, .5)}, {"p90", pct(ttft, .9)}, {"p99", pct(ttft, .99)}}},
                      {"tpot_ms", {{"p50", pct(tpot, .5)}, {"p90", pct(tpot, .9)}, {"p99", pct(tpot, .99)}}},
                      {"itl_ms", {{"p50", pct(itl, .5)}, {"p90", pct(itl, .9)}, {"p99", pct(itl, .99)}}},
                      {"scheduler_overhead_us_per_step", ovh_us}, {"forward_us_per_step", fwd_us},
                      {"overhead_pct_of_step", fwd_us + ovh_us > 0 ? 100 * ovh_us / (fwd_us + ovh_us) : 0},
                      {"pick_us_per_step", pick_us}, {"decode_steps", dsteps},
                      {"decode_overhead_us_per_step", d_ovh_us}, {"decode_forward_us_per_step", d_fwd_us},
                      {"decode_overhead_pct_of_step", d_pct}, {"spec_verify_steps", sp_steps},
                      {"spec_drafted", sp_drafted}, {"spec_accepted", sp_accepted}};
  if (json_out) {
    std::printf("%s\n", r.dump().c_str());
  } else {
    std::printf("concurrency %d: %d requests (%d failed) in %.2f s: %.2f req/s, %.1f output tok/s\n", concurrency, ok,
                failed.load(), wall, ok / wall, double(out_tokens) / wall);
    std::printf("  TTFT ms   p50 %8.1f  p90 %8.1f  p99 %8.1f\n", pct(ttft, .5), pct(ttft, .9), pct(ttft, .99));
    std::printf("  TPOT ms   p50 %8.2f  p90 %8.2f  p99 %8.2f\n", pct(tpot, .5), pct(tpot, .9), pct(tpot, .99));
    std::printf("  ITL  ms   p50 %8.2f  p90 %8.2f  p99 %8.2f\n", pct(itl, .5), pct(itl, .9), pct(itl, .99));
    std::printf("  scheduler overhead %.1f us/step (token choice %.1f) vs forward %.1f us/step (%.2f%%)\n", ovh_us,
                pick_us, fwd_us, fwd_us + ovh_us > 0 ? 100 * ovh_us / (fwd_us + ovh_us) : 0.0);
    std::printf("  decode steps: overhead %.1f us/step vs forward %.1f us/step (%.2f%%) over %.0f steps\n", d_ovh_us,
                d_fwd_us, d_pct, dsteps);
    if (sp_drafted > 0)
      std::printf("  speculation: %.0f drafts, %.1f%% accepted, %.2f tokens per verify step\n", sp_drafted,
                  100 * sp_accepted / sp_drafted, (sp_accepted + sp_steps) / sp_steps);
  }
  return failed.load() == 0 ? 0 : 1;
}

}  // namespace ds::app
