// SPDX-License-Identifier: MIT
// Continuous batching: one engine thread runs every active sequence through ONE Model::forward per step.
// Requests wait in a bounded queue and are admitted into N slots as slots free up; each slot owns a contiguous
// latent KV cache of `ctx` tokens. Prompts are prefilled in chunks aligned to multiples of `chunk` (so a sequence's
// arithmetic never depends on what else is in the batch: continuous batching cannot change a greedy output), at most
// `batch_tokens` prompt tokens per step, while running sequences decode one token each step.
// Prefix reuse: a new prompt takes the free slot whose cache shares the longest prefix with it, or copies the shared
// rows from any other slot's cache when that prefix is longer (a shared system prompt is computed once). Only rows
// that were computed as aligned prompt chunks are reused, so reuse cannot change results either.
// Thread-safety: submit/cancel/stats from any thread; events are delivered through a Channel (mutex + condvar).
#pragma once
#include <array>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "runtime/engine.h"
#include "runtime/sampler.h"

namespace ds::rt {

struct GenParams {
  SamplingParams sampling;
  int64_t max_tokens = 16;        // >= 1
  int top_logprobs = -1;          // -1: no logprobs; 0..20: the chosen token's logprob plus this many alternatives
  bool ignore_eos = false;
};

struct TokenEvent {
  int32_t id = 0;
  float logprob = 0;                               // when top_logprobs >= 0
  std::vector<std::pair<int32_t, float>> top;      // top alternatives, most likely first
};

enum class Finish { None, Stop, Length, Cancelled, Error };
const char* finish_name(Finish f);

// Wakes the thread that waits for one or more requests (e.g. the n choices of one HTTP request).
struct Channel {
  std::mutex m;
  std::condition_variable cv;
};

class GenRequest {
 public:
  // Guarded by channel->m.
  std::deque<TokenEvent> events;
  Finish finish = Finish::None;
  std::string error;
  int64_t cached_tokens = 0;  // prompt tokens whose KV rows were reused

  const std::vector<int32_t>& prompt() const { return prompt_; }
  const GenParams& params() const { return params_; }
  std::shared_ptr<Channel> channel() const { return ch_; }
  // Stops generation; the scheduler frees the slot at its next step (the request ends with Finish::Cancelled,
  // unless it already finished).
  void cancel();
  bool cancelled() const { return cancel_.load(); }

 private:
  friend class Scheduler;
  std::vector<int32_t> prompt_;
  GenParams params_;
  std::shared_ptr<Channel> ch_;
  std::atomic<bool> cancel_{false};
  class Scheduler* owner_ = nullptr;
  std::chrono::steady_clock::time_point t_submit_, t_last_;
  bool got_first_ = false;
};

struct SchedulerOptions {
  int parallel = 4;           // slots (sequences computed together)
  int64_t ctx = 4096;         // tokens per slot cache
  int64_t batch_tokens = 512; // prompt tokens per step (all slots together)
  int64_t chunk = 64;         // prefill chunk alignment (tokens); also the granularity of prefix reuse
  int queue_max = 64;         // waiting requests beyond the slots
};

// Prometheus-style cumulative histogram with fixed bounds (seconds).
struct Histogram {
  static constexpr std::array<double, 14> kBounds = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                                                      0.25,  0.5,    1,     2.5,  5,     10,  30};
  std::array<uint64_t, kBounds.size() + 1> counts{};
  double sum = 0;
  uint64_t n = 0;
  void add(double v);
  double quantile(double q) const;  // upper bucket bound (approximate)
};

struct SchedulerStats {
  uint64_t requests_submitted = 0, requests_rejected = 0;
  uint64_t finished_stop = 0, finished_length = 0, finished_cancelled = 0, finished_error = 0;
  uint64_t prompt_tokens = 0, prompt_tokens_computed = 0, prefix_hit_tokens = 0, generated_tokens = 0;
  uint64_t steps = 0;
  double forward_seconds = 0, overhead_seconds = 0;  // overhead: step time outside Model::forward
  double last_forward_us = 0, last_overhead_us = 0;
  int64_t queue_depth = 0, active_slots = 0, slots = 0;
  int64_t kv_used_tokens = 0, kv_capacity_tokens = 0, kv_cached_tokens = 0;
  Histogram ttft, itl;
};

class QueueFull : public std::runtime_error {
 public:
  QueueFull() : std::runtime_error("the request queue is full") {}
};

class Scheduler {
 public:
  Scheduler(Engine& engine, const SchedulerOptions& opt);
  ~Scheduler();
  Scheduler(const Scheduler&) = delete;
  Scheduler& operator=(const Scheduler&) = delete;

  // Queues a request. Throws ds::Error for a prompt that is empty, has ids out of range or does not fit the
  // context (prompt.size() must be < ctx), and QueueFull when the queue is full. Events go to `ch`.
  std::shared_ptr<GenRequest> submit(std::vector<int32_t> prompt, const GenParams& p, std::shared_ptr<Channel> ch);
  // Cancels every queued and running request (graceful shutdown after a grace period).
  void cancel_all();
  // Cancels everything and stops the engine thread.
  void shutdown();

  SchedulerStats stats() const;
  const SchedulerOptions& options() const { return opt_; }
  int64_t vocab() const { return vocab_; }
  bool idle() const;

 private:
  struct Slot {
    std::unique_ptr<model::KvCache> cache;
    std::vector<int32_t> tokens;    // ids whose rows are in the cache (cache->length of them)
    int64_t aligned_rows = 0;       // leading rows computed as aligned prompt chunks (reusable)
    std::shared_ptr<GenRequest> req;
    std::unique_ptr<Sampler> sampler;
    std::vector<int32_t> history;   // prompt + generated (penalties)
    int64_t prompt_pos = 0;         // next prompt index to compute
    int64_t generated = 0;
    int32_t next_token = -1;        // sampled, not yet in the cache
  };
  void loop();
  void step();
  void admit(std::shared_ptr<GenRequest> r);
  void finish(Slot& s, Finish f, const std::string& err = {});
  void emit(Slot& s, const float* logits);
  void notify(GenRequest& r);
  void wake();

  Engine& engine_;
  SchedulerOptions opt_;
  int64_t vocab_;
  std::vector<int32_t> eos_;
  std::vector<Slot> slots_;
  mutable std::mutex qm_;          // queue_, stats_, stop_
  std::condition_variable qcv_;
  std::deque<std::shared_ptr<GenRequest>> queue_;
  bool stop_ = false;
  bool cancel_all_ = false;
  std::atomic<bool> poke_{false};
  SchedulerStats stats_;
  size_t rr_ = 0;                  // round-robin start for prefill budget
  std::thread thread_;
  friend class GenRequest;
};

}  // namespace ds::rt
