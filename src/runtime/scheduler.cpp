// SPDX-License-Identifier: MIT
#include "runtime/scheduler.h"

#include <algorithm>
#include <cmath>

#include "base/error.h"
#include "base/log.h"

namespace ds::rt {

using Clock = std::chrono::steady_clock;

const char* finish_name(Finish f) {
  switch (f) {
    case Finish::Stop: return "stop";
    case Finish::Length: return "length";
    case Finish::Cancelled: return "cancelled";
    case Finish::Error: return "error";
    default: return "none";
  }
}

void Histogram::add(double v) {
  size_t i = 0;
  while (i < kBounds.size() && v > kBounds[i]) ++i;
  ++counts[i];
  sum += v;
  ++n;
}

double Histogram::quantile(double q) const {
  if (n == 0) return 0;
  const double target = q * double(n);
  uint64_t acc = 0;
  for (size_t i = 0; i < counts.size(); ++i) {
    acc += counts[i];
    if (double(acc) >= target) return i < kBounds.size() ? kBounds[i] : kBounds.back();
  }
  return kBounds.back();
}

void GenRequest::cancel() {
  cancel_.store(true);
  if (owner_) owner_->wake();
}

Scheduler::Scheduler(Engine& engine, const SchedulerOptions& opt)
    : engine_(engine), opt_(opt), vocab_(engine.config().vocab_size), eos_(engine.eos_ids()) {
  DS_CHECK(opt_.parallel >= 1 && opt_.parallel <= 256, "--parallel must be in [1, 256], got ", opt_.parallel);
  DS_CHECK(opt_.ctx >= 2, "--ctx must be at least 2, got ", opt_.ctx);
  DS_CHECK(opt_.chunk >= 1, "prefill chunk must be >= 1");
  DS_CHECK(opt_.batch_tokens >= 1, "--batch-tokens must be >= 1");
  DS_CHECK(opt_.queue_max >= 0, "--queue must be >= 0");
  slots_.resize(size_t(opt_.parallel));
  for (auto& s : slots_) s.cache = engine_.model().new_cache(opt_.ctx);
  stats_.slots = opt_.parallel;
  stats_.kv_capacity_tokens = opt_.parallel * opt_.ctx;
  thread_ = std::thread([this] { loop(); });
}

Scheduler::~Scheduler() { shutdown(); }

void Scheduler::shutdown() {
  {
    std::lock_guard<std::mutex> lk(qm_);
    stop_ = true;
  }
  qcv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void Scheduler::cancel_all() {
  {
    std::lock_guard<std::mutex> lk(qm_);
    cancel_all_ = true;
  }
  qcv_.notify_all();
}

void Scheduler::wake() {
  {
    std::lock_guard<std::mutex> lk(qm_);
    poke_ = true;
  }
  qcv_.notify_all();
}

SchedulerStats Scheduler::stats() const {
  std::lock_guard<std::mutex> lk(qm_);
  return stats_;
}

bool Scheduler::idle() const {
  std::lock_guard<std::mutex> lk(qm_);
  return stats_.active_slots == 0 && stats_.queue_depth == 0;
}

std::shared_ptr<GenRequest> Scheduler::submit(std::vector<int32_t> prompt, const GenParams& p,
                                              std::shared_ptr<Channel> ch) {
  DS_CHECK(!prompt.empty(), "the prompt is empty");
  DS_CHECK(int64_t(prompt.size()) < opt_.ctx, "the prompt has ", prompt.size(),
           " tokens; the context holds ", opt_.ctx);
  for (int32_t id : prompt) DS_CHECK(id >= 0 && id < vocab_, "token id ", id, " is out of range [0, ", vocab_, ")");
  DS_CHECK(p.max_tokens >= 1, "max_tokens must be >= 1");
  DS_CHECK(p.top_logprobs >= -1 && p.top_logprobs <= 20, "top_logprobs must be in [0, 20]");
  validate(p.sampling);
  auto r = std::make_shared<GenRequest>();
  r->prompt_ = std::move(prompt);
  r->params_ = p;
  r->ch_ = ch ? std::move(ch) : std::make_shared<Channel>();
  r->owner_ = this;
  r->t_submit_ = Clock::now();
  {
    std::lock_guard<std::mutex> lk(qm_);
    DS_CHECK(!stop_, "the server is shutting down");
    if (int64_t(queue_.size()) + stats_.active_slots >= int64_t(opt_.parallel) + int64_t(opt_.queue_max)) {
      ++stats_.requests_rejected;
      throw QueueFull();
    }
    queue_.push_back(r);
    ++stats_.requests_submitted;
    stats_.queue_depth = int64_t(queue_.size());
  }
  qcv_.notify_all();
  return r;
}

void Scheduler::notify(GenRequest& r) { r.ch_->cv.notify_all(); }

void Scheduler::finish(Slot& s, Finish f, const std::string& err) {
  auto r = s.req;
  if (!r) return;
  {
    std::lock_guard<std::mutex> lk(r->ch_->m);
    if (r->finish == Finish::None) {
      r->finish = f;
      r->error = err;
    }
  }
  notify(*r);
  {
    std::lock_guard<std::mutex> lk(qm_);
    switch (f) {
      case Finish::Stop: ++stats_.finished_stop; break;
      case Finish::Length: ++stats_.finished_length; break;
      case Finish::Cancelled: ++stats_.finished_cancelled; break;
      default: ++stats_.finished_error; break;
    }
  }
  s.req.reset();
  s.sampler.reset();
  s.history.clear();
  s.next_token = -1;
}

static int64_t common_prefix(const std::vector<int32_t>& a, const std::vector<int32_t>& b, int64_t limit) {
  int64_t n = 0;
  const int64_t m = std::min<int64_t>({int64_t(a.size()), int64_t(b.size()), limit});
  while (n < m && a[size_t(n)] == b[size_t(n)]) ++n;
  return n;
}

void Scheduler::admit(std::shared_ptr<GenRequest> r) {
  const auto& P = r->prompt_;
  const int64_t C = opt_.chunk;
  // Rows reusable from a slot: shared with the prompt, computed as aligned prompt chunks, leaving at least one prompt
  // token to compute, rounded down to the chunk alignment.
  auto reusable = [&](const Slot& s) {
    int64_t l = common_prefix(s.tokens, P, std::min<int64_t>(s.aligned_rows, int64_t(P.size()) - 1));
    return l / C * C;
  };
  int best_free = -1;
  int64_t best_free_reuse = -1;
  for (size_t i = 0; i < slots_.size(); ++i) {
    if (slots_[i].req) continue;
    const int64_t u = reusable(slots_[i]);
    // Ties: the slot holding the fewest cached rows, so useful caches survive longer.
    if (u > best_free_reuse || (u == best_free_reuse && slots_[i].tokens.size() < slots_[size_t(best_free)].tokens.size())) {
      best_free = int(i);
      best_free_reuse = u;
    }
  }
  DS_CHECK(best_free >= 0, "scheduler: admit without a free slot");
  int best_src = -1;
  int64_t best_src_reuse = best_free_reuse;
  for (size_t i = 0; i < slots_.size(); ++i) {
    if (int(i) == best_free) continue;
    const int64_t u = reusable(slots_[i]);
    if (u > best_src_reuse) best_src = int(i), best_src_reuse = u;
  }
  Slot& s = slots_[size_t(best_free)];
  int64_t reuse = best_free_reuse;
  if (best_src >= 0) {
    reuse = best_src_reuse;
    s.cache->copy_prefix_from(*slots_[size_t(best_src)].cache, reuse);
    s.tokens.assign(P.begin(), P.begin() + reuse);
  } else {
    s.cache->length = reuse;
    s.cache->mtp_length = 0;
    s.tokens.resize(size_t(reuse));
  }
  s.aligned_rows = reuse;
  s.req = r;
  s.sampler = std::make_unique<Sampler>(r->params_.sampling);
  s.history = P;
  s.prompt_pos = reuse;
  s.generated = 0;
  s.next_token = -1;
  {
    std::lock_guard<std::mutex> lk(r->ch_->m);
    r->cached_tokens = reuse;
  }
  std::lock_guard<std::mutex> lk(qm_);
  stats_.prompt_tokens += P.size();
  stats_.prefix_hit_tokens += uint64_t(reuse);
}

void Scheduler::emit(Slot& s, const float* logits) {
  GenRequest& r = *s.req;
  const GenParams& p = r.params_;
  // Greedy without penalties is argmax of the raw row (what Sampler computes, without its copy of the row).
  const auto& sp = p.sampling;
  const bool plain_greedy = sp.temperature == 0.0f && sp.repetition_penalty == 1.0f && sp.presence_penalty == 0.0f &&
                            sp.frequency_penalty == 0.0f;
  const int32_t id = plain_greedy ? argmax(logits, vocab_) : s.sampler->sample(logits, vocab_, s.history);
  const bool eos = !p.ignore_eos && std::find(eos_.begin(), eos_.end(), id) != eos_.end();
  const auto now = Clock::now();
  {
    std::lock_guard<std::mutex> lk(qm_);
    if (!r.got_first_) stats_.ttft.add(std::chrono::duration<double>(now - r.t_submit_).count());
    else stats_.itl.add(std::chrono::duration<double>(now - r.t_last_).count());
    if (!eos) ++stats_.generated_tokens;
  }
  r.got_first_ = true;
  r.t_last_ = now;
  if (eos) {
    finish(s, Finish::Stop);
    return;
  }
  TokenEvent ev;
  ev.id = id;
  if (p.top_logprobs >= 0) {
    float mx = logits[0];
    for (int64_t i = 1; i < vocab_; ++i) mx = std::max(mx, logits[i]);
    double sum = 0;
    for (int64_t i = 0; i < vocab_; ++i) sum += std::exp(double(logits[i] - mx));
    const float lse = mx + float(std::log(sum));
    ev.logprob = logits[id] - lse;
    if (p.top_logprobs > 0) {
      std::vector<int32_t> idx(static_cast<size_t>(vocab_));
      for (int64_t i = 0; i < vocab_; ++i) idx[size_t(i)] = int32_t(i);
      const size_t k = size_t(std::min<int64_t>(p.top_logprobs, vocab_));
      std::partial_sort(idx.begin(), idx.begin() + long(k), idx.end(), [&](int32_t a, int32_t b) {
        return logits[a] > logits[b] || (logits[a] == logits[b] && a < b);
      });
      for (size_t i = 0; i < k; ++i) ev.top.emplace_back(idx[i], logits[idx[i]] - lse);
    }
  }
  {
    std::lock_guard<std::mutex> lk(r.ch_->m);
    r.events.push_back(std::move(ev));
  }
  notify(r);
  s.history.push_back(id);
  s.next_token = id;
  ++s.generated;
  if (s.generated >= p.max_tokens || s.cache->length + 1 > s.cache->capacity()) finish(s, Finish::Length);
}

void Scheduler::step() {
  const auto t0 = Clock::now();
  model::Batch b;
  struct Item { size_t slot; bool decode; int64_t end; };
  std::vector<Item> items;
  for (size_t i = 0; i < slots_.size(); ++i) {
    Slot& s = slots_[i];
    if (!s.req) continue;
    if (s.req->cancelled()) { finish(s, Finish::Cancelled); continue; }
    if (s.prompt_pos < int64_t(s.req->prompt_.size())) continue;
    b.tokens.push_back(s.next_token);
    b.seqs.push_back({s.cache.get(), 1, false, false});
    items.push_back({i, true, 0});
  }
  int64_t budget = opt_.batch_tokens;
  bool any_prefill = false;
  const size_t N = slots_.size();
  for (size_t k = 0; k < N; ++k) {
    const size_t i = (rr_ + k) % N;
    Slot& s = slots_[i];
    if (!s.req) continue;
    const auto& P = s.req->prompt_;
    if (s.prompt_pos >= int64_t(P.size())) continue;
    const int64_t end = std::min<int64_t>((s.prompt_pos / opt_.chunk + 1) * opt_.chunk, int64_t(P.size()));
    const int64_t len = end - s.prompt_pos;
    if (len > budget && any_prefill) continue;
    b.tokens.insert(b.tokens.end(), P.begin() + s.prompt_pos, P.begin() + end);
    b.seqs.push_back({s.cache.get(), len, false, false});
    items.push_back({i, false, end});
    budget -= len;
    any_prefill = true;
  }
  ++rr_;
  if (items.empty()) return;
  model::ForwardOutput out;
  const auto tf0 = Clock::now();
  try {
    engine_.model().forward(b, &out);
  } catch (const std::exception& e) {
    log_warn("scheduler: forward failed: ", e.what());
    for (const auto& it : items) {
      Slot& s = slots_[it.slot];
      s.cache->length = 0;
      s.tokens.clear();
      s.aligned_rows = 0;
      finish(s, Finish::Error, "the forward pass failed");
    }
    return;
  }
  const auto tf1 = Clock::now();
  uint64_t computed = 0;
  for (size_t j = 0; j < items.size(); ++j) {
    Slot& s = slots_[items[j].slot];
    const float* row = out.logits.data() + j * size_t(vocab_);
    if (items[j].decode) {
      s.tokens.push_back(s.next_token);
      if (!s.req) continue;
      emit(s, row);
    } else {
      const auto& P = s.req->prompt_;
      s.tokens.insert(s.tokens.end(), P.begin() + s.prompt_pos, P.begin() + items[j].end);
      computed += uint64_t(items[j].end - s.prompt_pos);
      s.prompt_pos = items[j].end;
      s.aligned_rows = s.prompt_pos;
      if (s.prompt_pos == int64_t(P.size())) emit(s, row);
    }
  }
  const auto t1 = Clock::now();
  const double fwd = std::chrono::duration<double>(tf1 - tf0).count();
  const double all = std::chrono::duration<double>(t1 - t0).count();
  std::lock_guard<std::mutex> lk(qm_);
  ++stats_.steps;
  stats_.prompt_tokens_computed += computed;
  stats_.forward_seconds += fwd;
  stats_.overhead_seconds += all - fwd;
  stats_.last_forward_us = fwd * 1e6;
  stats_.last_overhead_us = (all - fwd) * 1e6;
}

void Scheduler::loop() {
  while (true) {
    std::vector<std::shared_ptr<GenRequest>> admitted, dropped;
    bool stopping = false, cancel_everything = false;
    {
      std::unique_lock<std::mutex> lk(qm_);
      auto busy = [&] {
        for (const auto& s : slots_)
          if (s.req) return true;
        return false;
      };
      if (!busy() && queue_.empty() && !stop_ && !cancel_all_) {
        qcv_.wait(lk, [&] { return stop_ || cancel_all_ || poke_ || !queue_.empty(); });
      }
      poke_ = false;
      stopping = stop_;
      cancel_everything = cancel_all_ || stop_;
      cancel_all_ = false;
      for (auto it = queue_.begin(); it != queue_.end();) {
        if ((*it)->cancelled() || cancel_everything) {
          dropped.push_back(*it);
          it = queue_.erase(it);
        } else {
          ++it;
        }
      }
      size_t free_slots = 0;
      for (const auto& s : slots_) free_slots += s.req ? 0 : 1;
      while (!queue_.empty() && admitted.size() < free_slots) {
        admitted.push_back(queue_.front());
        queue_.pop_front();
      }
      stats_.queue_depth = int64_t(queue_.size());
    }
    for (auto& r : dropped) {
      {
        std::lock_guard<std::mutex> lk(r->ch_->m);
        if (r->finish == Finish::None) r->finish = Finish::Cancelled;
      }
      notify(*r);
      std::lock_guard<std::mutex> lk(qm_);
      ++stats_.finished_cancelled;
    }
    if (cancel_everything)
      for (auto& s : slots_) finish(s, Finish::Cancelled);
    for (auto& r : admitted) admit(r);
    if (stopping) break;
    step();
    std::lock_guard<std::mutex> lk(qm_);
    int64_t active = 0, used = 0, cached = 0;
    for (const auto& s : slots_) {
      cached += s.cache->length;
      if (s.req) ++active, used += s.cache->length;
    }
    stats_.active_slots = active;
    stats_.kv_used_tokens = used;
    stats_.kv_cached_tokens = cached;
  }
  std::lock_guard<std::mutex> lk(qm_);
  stats_.active_slots = 0;
  stats_.kv_used_tokens = 0;
}

}  // namespace ds::rt
