// SPDX-License-Identifier: MIT
// Continuous batching: one engine thread runs every active sequence through ONE Model::forward per step.
// Requests wait in a bounded queue and are admitted into N slots as slots free up. The latent KV cache is paged:
// every slot's sequence holds a block table into one shared model::KvPool (--kv-cache-tokens). Prompts are
// prefilled in chunks aligned to multiples of `chunk` (so a sequence's arithmetic never depends on what else is in
// the batch: continuous batching cannot change a greedy output), at most `batch_tokens` prompt tokens per step,
// while running sequences decode one token each step.
// Prefix reuse: full blocks of prompt rows are published in the pool under their token ids (chained through the
// parent block); a new prompt looks its blocks up one by one and shares the ones found read-only, so a shared system
// prompt is computed once and stored once. Only rows computed by the multi-head (prefill) form are published, and
// the reused length is chosen so the rest of the prompt is computed in the same form as from scratch: reuse cannot
// change results either. Finished sequences' published blocks stay cached until the pool needs them (LRU).
// Preemption: when a decoding sequence needs a block and the pool has none, the youngest running sequence is
// swapped out (its rows copied to host memory, its blocks given back) and swapped back in, bit for bit, once blocks
// are free; swapped sequences resume before new requests are admitted. Only a sequence that is alone and still
// does not fit ends early (finish_reason length).
// Speculation (opt.draft > 0): before each forward the MTP layer runs for every sequence at once (its rows for the
// positions computed in the last step, then the drafts); each decoding sequence then verifies its next token and
// drafts as one chunk of 1 + n tokens in the same forward, and keeps what runtime/speculative.h accepts. A chunk's
// rows are bitwise the rows plain decoding gives, so greedy outputs do not change. MTP rows in blocks reused from the
// prefix cache are whatever the publisher wrote (they only steer drafts, never outputs).
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

#include "runtime/constraint.h"
#include "runtime/engine.h"
#include "runtime/sampler.h"
#include "runtime/speculative.h"
#include "runtime/token_pick.h"

namespace ds::rt {

struct GenParams {
  SamplingParams sampling;
  int64_t max_tokens = 16;        // >= 1
  int top_logprobs = -1;          // -1: no logprobs; 0..20: the chosen token's logprob plus this many alternatives
  bool ignore_eos = false;
  std::shared_ptr<const LogitConstraint> constraint;  // null: any token; else cloned for each sequence
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
  int64_t ctx = 4096;         // most tokens one sequence may hold
  int64_t kv_tokens = 0;      // KV pool size in tokens, rounded up to blocks (0: parallel x ctx)
  int64_t block_size = 16;    // tokens per KV block; also the granularity of prefix reuse
  bool prefix_cache = true;   // publish and reuse prompt blocks
  int64_t batch_tokens = 512; // prompt tokens per step (all slots together)
  int64_t chunk = 64;         // prefill chunk alignment (tokens)
  int queue_max = 64;         // waiting requests beyond the slots
  int threads = 0;            // threads for the per-step token choice (0: all cores)
  int draft = 0;              // MTP drafts per decoding sequence and step (0: no speculation; needs an MTP layer)
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
  double pick_seconds = 0;                           // the part of the overhead spent choosing tokens
  uint64_t decode_steps = 0;                         // steps without prompt tokens (pure decode)
  double decode_forward_seconds = 0, decode_overhead_seconds = 0;
  double last_forward_us = 0, last_overhead_us = 0;
  int64_t queue_depth = 0, active_slots = 0, slots = 0;
  int64_t kv_used_tokens = 0, kv_capacity_tokens = 0, kv_cached_tokens = 0;
  int64_t kv_block_size = 0, kv_blocks_total = 0, kv_blocks_used = 0, kv_blocks_cached = 0;
  int64_t kv_bytes_per_token = 0;     // one token's rows in every cache layer, in the pool's format
  const char* kv_dtype = "f32";       // --kv-dtype (base/kv_rows.h)
  uint64_t prefix_hit_requests = 0, kv_evictions = 0, kv_full_stops = 0;
  uint64_t kv_preemptions = 0;        // sequences swapped out to free blocks
  int64_t kv_swapped_requests = 0;    // sequences swapped out now
  SpecStats spec;                     // speculative decoding (runtime/speculative.h)
  Histogram ttft, itl;
};

class QueueFull : public std::runtime_error {
 public:
  QueueFull() : std::runtime_error("the request queue is full") {}
};

class Scheduler {
 public:
  Scheduler(Engine& engine, const SchedulerOptions& opt);
  // Serving across processes: rank 0 runs the Scheduler (and the HTTP server), and every other rank calls follow(),
  // which runs each step rank 0's scheduler runs, on its shard of the model, until rank 0's scheduler shuts down.
  static void follow(Engine& engine);
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
    std::unique_ptr<model::KvCache> cache;  // block table into pool_; empty while the slot is free
    int64_t prefill_rows = 0;       // leading rows computed by the multi-head form (reused, or prompt chunks the model runs in that form)
    int64_t published = 0;          // leading blocks published in (or adopted from) the prefix cache
    bool publishing = true;         // false once a publish found the same content already there
    std::shared_ptr<GenRequest> req;
    std::unique_ptr<Sampler> sampler;
    std::unique_ptr<LogitConstraint> constraint;  // the request's, cloned (masks the row before each choice)
    std::vector<int32_t> history;   // prompt + generated (penalties)
    int64_t prompt_pos = 0;         // next prompt index to compute
    int64_t generated = 0;
    int32_t next_token = -1;        // sampled, not yet in the cache
    uint64_t admitted = 0;          // admission order: the youngest running sequence is preempted first
    bool swapped = false;           // preempted: rows in `swap`, no blocks held
    std::vector<uint8_t> swap;      // [swap_blocks, block_bytes] the blocks' bytes while swapped out
    int64_t swap_blocks = 0, swap_length = 0, swap_mtp_length = 0;
    DraftState draft;               // speculation: MTP rows waiting, this step's drafts
    int n_draft = 0;                // drafts verified this step
  };
  void loop();
  void step();
  bool admit(const std::shared_ptr<GenRequest>& r);  // false: the pool cannot hold the prompt yet
  std::vector<int32_t> lookup_prefix(const std::vector<int32_t>& P);
  void publish_blocks(Slot& s);
  void reserve_decode_rows();
  Slot* preemption_victim(Slot& needy);
  void swap_out(Slot& s);
  bool swap_in(Slot& s);
  bool resume_swapped();  // true while some sequence is still swapped out
  void finish(Slot& s, Finish f, const std::string& err = {});
  void emit(Slot& s, Pick& pick);
  int drafts_for(const Slot& s) const;  // drafts a decoding sequence may verify this step
  void run_drafter();
  void accept_step(Slot& s, const float* rows, const float* hidden);
  void notify(GenRequest& r);
  void wake();

  Engine& engine_;
  SchedulerOptions opt_;
  int64_t vocab_;
  std::vector<int32_t> eos_;
  std::shared_ptr<model::KvPool> pool_;
  std::vector<Slot> slots_;
  mutable std::mutex qm_;          // queue_, stats_, stop_
  std::condition_variable qcv_;
  std::deque<std::shared_ptr<GenRequest>> queue_;
  bool stop_ = false;
  bool cancel_all_ = false;
  std::atomic<bool> poke_{false};
  SchedulerStats stats_;
  size_t rr_ = 0;                  // round-robin start for prefill budget
  uint64_t admissions_ = 0;
  int threads_ = 1;
  // Per-step work buffers, reused so that a step allocates nothing in steady state.
  struct Item { size_t slot; bool decode; int64_t end; };
  model::Batch batch_;
  model::ForwardOutput out_;
  std::vector<Item> items_;
  std::vector<PickJob> jobs_;
  std::vector<size_t> job_slot_;
  std::vector<size_t> order_;      // running slots, oldest admission first
  std::vector<Pick> picks_;
  std::unique_ptr<Drafter> drafter_;
  std::vector<DraftJob> draft_jobs_;
  std::vector<std::pair<int32_t, int>> kept_;
  std::thread thread_;
  friend class GenRequest;
};

}  // namespace ds::rt
