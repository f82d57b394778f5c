// SPDX-License-Identifier: MIT
#include "runtime/scheduler.h"

#include <algorithm>
#include <cmath>

#include "base/error.h"
#include "base/kv_rows.h"
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
  DS_CHECK(opt_.block_size >= 1 && opt_.block_size <= 1024, "--kv-block-size must be in [1, 1024], got ",
           opt_.block_size);
  DS_CHECK(opt_.kv_tokens >= 0, "--kv-cache-tokens must be >= 0");
  const int64_t bs = opt_.block_size;
  // Default: every slot can fill its whole context without waiting for blocks.
  const int64_t n_blocks = opt_.kv_tokens > 0 ? (opt_.kv_tokens + bs - 1) / bs : opt_.parallel * ((opt_.ctx + bs - 1) / bs);
  pool_ = engine_.model().new_pool(n_blocks, bs);
  // Across processes this rank (0) leads: every step it runs is sent to the others (Scheduler::follow).
  if (engine_.model().ranks() > 1) engine_.model().lead(*pool_);
  slots_.resize(size_t(opt_.parallel));
  for (auto& s : slots_) s.cache = std::make_unique<model::KvCache>(pool_, opt_.ctx);
  stats_.slots = opt_.parallel;
  stats_.kv_capacity_tokens = n_blocks * bs;
  stats_.kv_block_size = bs;
  stats_.kv_bytes_per_token = pool_->bytes_per_token();
  stats_.kv_dtype = kv_dtype_name(pool_->dtype());
  threads_ = opt_.threads > 0 ? opt_.threads : int(std::max(1u, std::thread::hardware_concurrency()));
  stats_.kv_blocks_total = n_blocks;
  DS_CHECK(opt_.draft >= 0, "--draft must be >= 0");
  if (resolve_draft(engine_.model(), opt_.draft) > 0) drafter_ = std::make_unique<Drafter>(engine_.model());
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
  engine_.model().end_lead();  // the following ranks return from follow()
}

void Scheduler::follow(Engine& engine) { engine.model().follow(); }

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
  DS_CHECK((int64_t(prompt.size()) + opt_.block_size) / opt_.block_size <= pool_->n_blocks(), "the prompt has ",
           prompt.size(), " tokens; the KV cache pool holds ", pool_->n_blocks() * opt_.block_size,
           " (--kv-cache-tokens)");
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
  // Blocks go back first (published ones stay cached in the pool for later prompts, the rest become free), and the
  // counters say so before the client hears that its request ended.
  const int64_t len = s.cache->length;
  s.cache->clear();
  s.req.reset();
  s.sampler.reset();
  s.constraint.reset();
  s.history.clear();
  s.next_token = -1;
  s.swapped = false;
  s.draft.clear();
  s.n_draft = 0;
  std::vector<uint8_t>().swap(s.swap);
  {
    std::lock_guard<std::mutex> lk(qm_);
    switch (f) {
      case Finish::Stop: ++stats_.finished_stop; break;
      case Finish::Length: ++stats_.finished_length; break;
      case Finish::Cancelled: ++stats_.finished_cancelled; break;
      default: ++stats_.finished_error; break;
    }
    stats_.active_slots = std::max<int64_t>(0, stats_.active_slots - 1);
    stats_.kv_used_tokens = std::max<int64_t>(0, stats_.kv_used_tokens - len);
    stats_.kv_blocks_used = pool_->n_used();
    stats_.kv_blocks_cached = pool_->n_cached();
    stats_.kv_cached_tokens = pool_->n_cached() * opt_.block_size;
  }
  {
    std::lock_guard<std::mutex> lk(r->ch_->m);
    if (r->finish == Finish::None) {
      r->finish = f;
      r->error = err;
    }
  }
  notify(*r);
}

std::vector<int32_t> Scheduler::lookup_prefix(const std::vector<int32_t>& P) {
  std::vector<int32_t> hit;
  if (!opt_.prefix_cache) return hit;
  const int64_t bs = opt_.block_size, C = opt_.chunk, n = int64_t(P.size());
  // Full blocks only, leaving at least one prompt token to compute (its logits start the generation).
  for (int64_t b = 0; (b + 1) * bs <= n - 1; ++b) {
    const int32_t id = pool_->lookup(hit.empty() ? -1 : hit.back(), P.data() + b * bs);
    if (id < 0) break;
    hit.push_back(id);
  }
  // The rest of the prompt must be computed in the same attention forms as from scratch, where chunks end at
  // multiples of C: resuming at r, the first chunk [r, end) must get the form that the from-scratch chunk [r0, end)
  // got (the model's rule, Model::attention_form). Give back blocks until it does.
  using model::Model;
  while (!hit.empty()) {
    const int64_t r = int64_t(hit.size()) * bs, r0 = r / C * C, end = std::min(r0 + C, n);
    if (Model::attention_form(r, end - r) == Model::attention_form(r0, end - r0)) break;
    pool_->release(hit.back());
    hit.pop_back();
  }
  return hit;
}

bool Scheduler::admit(const std::shared_ptr<GenRequest>& r) {
  const auto& P = r->prompt_;
  const int64_t bs = opt_.block_size, n = int64_t(P.size());
  Slot* slot = nullptr;
  for (auto& s : slots_)
    if (!s.req) { slot = &s; break; }
  DS_CHECK(slot, "scheduler: admit without a free slot");
  Slot& s = *slot;
  std::vector<int32_t> hit = lookup_prefix(P);
  // Blocks for the whole prompt and the first generated token are taken now, so prefill never waits for memory.
  const int64_t need = (n + 1 + bs - 1) / bs - int64_t(hit.size());
  if (need > pool_->available()) {
    for (int32_t b : hit) pool_->release(b);
    return false;
  }
  const int64_t reuse = int64_t(hit.size()) * bs;
  s.cache->adopt(hit);
  DS_CHECK(s.cache->reserve(n + 1), "scheduler: KV reservation failed");
  s.prefill_rows = reuse;
  s.published = int64_t(hit.size());
  s.publishing = true;
  s.req = r;
  s.sampler = std::make_unique<Sampler>(r->params_.sampling);
  s.constraint = r->params_.constraint ? r->params_.constraint->clone() : nullptr;
  s.history = P;
  s.prompt_pos = reuse;
  s.generated = 0;
  s.next_token = -1;
  s.admitted = ++admissions_;
  s.swapped = false;
  s.draft.clear();
  s.n_draft = 0;
  // The reused blocks' MTP rows are the publisher's: the MTP layer continues after them.
  if (drafter_) s.cache->mtp_length = reuse;
  {
    std::lock_guard<std::mutex> lk(r->ch_->m);
    r->cached_tokens = reuse;
  }
  std::lock_guard<std::mutex> lk(qm_);
  stats_.prompt_tokens += P.size();
  stats_.prefix_hit_tokens += uint64_t(reuse);
  if (reuse > 0) ++stats_.prefix_hit_requests;
  return true;
}

// Publishes the slot's blocks that are now full of prompt rows computed by the multi-head form.
void Scheduler::publish_blocks(Slot& s) {
  if (!opt_.prefix_cache || !s.publishing) return;
  const auto& P = s.req->prompt_;
  const auto& blocks = s.cache->blocks();
  const int64_t bs = opt_.block_size;
  for (; s.published < s.prefill_rows / bs; ++s.published) {
    const int64_t b = s.published;
    if (!pool_->publish(blocks[size_t(b)], b > 0 ? blocks[size_t(b - 1)] : -1, P.data() + b * bs)) {
      s.publishing = false;  // an identical block is already published (a concurrent twin): its chain serves
      return;
    }
  }
}

void Scheduler::emit(Slot& s, Pick& pick) {
  GenRequest& r = *s.req;
  const GenParams& p = r.params_;
  const int32_t id = pick.id;
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
    ev.logprob = pick.logprob;
    ev.top.swap(pick.top);
  }
  {
    std::lock_guard<std::mutex> lk(r.ch_->m);
    r.events.push_back(std::move(ev));
  }
  notify(r);
  s.history.push_back(id);
  if (s.constraint) s.constraint->advance(id);
  s.next_token = id;
  if (drafter_) s.draft.add_next(&id, 1);  // the token after the MTP row of the position before it
  ++s.generated;
  if (s.generated >= p.max_tokens || s.cache->length + 1 > s.cache->capacity()) finish(s, Finish::Length);
}

// Ends cancelled requests, then gives every decoding sequence the block for its next row, oldest first. When the
// pool is out of blocks the youngest running sequence is swapped out (possibly the one asking): the older ones keep
// going, and the swapped one resumes exactly where it was once blocks are free again.
void Scheduler::reserve_decode_rows() {
  order_.clear();
  for (size_t i = 0; i < slots_.size(); ++i) {
    Slot& s = slots_[i];
    if (!s.req) continue;
    if (s.req->cancelled()) {
      finish(s, Finish::Cancelled);
      continue;
    }
    order_.push_back(i);
  }
  std::sort(order_.begin(), order_.end(), [&](size_t a, size_t b) { return slots_[a].admitted < slots_[b].admitted; });
  for (size_t i : order_) {
    Slot& s = slots_[i];
    if (!s.req || s.swapped || s.prompt_pos < int64_t(s.req->prompt_.size())) continue;
    // Rows for the next token and this step's drafts; drafts only where the pool has the blocks without preempting.
    s.n_draft = drafts_for(s);
    if (s.n_draft > 0 && !s.cache->reserve(s.cache->length + 1 + s.n_draft)) s.n_draft = 0;
    while (!s.cache->reserve(s.cache->length + 1)) {
      Slot* v = preemption_victim(s);
      if (!v) {  // nothing else holds blocks: this sequence alone outgrew the pool; end it as if its context were full
        {
          std::lock_guard<std::mutex> lk(qm_);
          ++stats_.kv_full_stops;
        }
        finish(s, Finish::Length);
        break;
      }
      swap_out(*v);
      if (v == &s) break;
    }
  }
}

int Scheduler::drafts_for(const Slot& s) const {
  if (!drafter_ || s.constraint) return 0;  // drafts would need the constraint advanced along them: not done
  const int64_t room = s.cache->capacity() - s.cache->length - 1, left = s.req->params_.max_tokens - s.generated - 1;
  return int(std::max<int64_t>(0, std::min<int64_t>({int64_t(opt_.draft), room, left})));
}

// The MTP layer for every running sequence at once: the rows of the positions computed since (whose next token is
// known), then the drafts of the decoding sequences that verify some this step.
void Scheduler::run_drafter() {
  draft_jobs_.clear();
  for (auto& s : slots_) {
    if (!s.req || s.swapped) continue;
    const bool decoding = s.prompt_pos >= int64_t(s.req->prompt_.size());
    const int n = decoding ? s.n_draft : 0;
    if (n == 0 && std::min<int64_t>(s.draft.rows, int64_t(s.draft.next.size())) == 0) continue;
    DraftJob j;
    j.cache = s.cache.get();
    j.state = &s.draft;
    j.n_draft = n;
    j.sampler = s.sampler.get();
    j.history = &s.history;
    draft_jobs_.push_back(j);
  }
  if (draft_jobs_.empty()) return;
  try {
    drafter_->run(draft_jobs_);
  } catch (const std::exception& e) {
    // Drafts only ever steer speed: a failed draft (e.g. no free block to copy a shared block's MTP rows into) drops
    // this step's drafts and the MTP rows waiting, and every sequence decodes on as if it had never drafted.
    log_warn("scheduler: MTP draft failed, decoding this step without drafts: ", e.what());
    for (DraftJob& j : draft_jobs_) {
      j.state->clear();
      j.cache->mtp_length = j.cache->length;
    }
    for (auto& s : slots_) s.n_draft = 0;
    return;
  }
  for (auto& s : slots_)
    if (s.req && s.n_draft > 0) s.n_draft = int(s.draft.drafts.size());
}

// A decoding sequence's verify chunk: keep the accepted drafts and the main model's own token, roll the caches
// back past the rest, and emit the kept tokens in order (each with the logprobs of the row it came from).
void Scheduler::accept_step(Slot& s, const float* rows, const float* hidden) {
  const int n = s.n_draft;
  const int64_t P = s.cache->length - 1 - n, D = engine_.config().hidden_size;
  kept_.clear();
  const int a = accept_drafts(rows, vocab_, s.draft, *s.sampler, s.history, &kept_);
  s.cache->length = P + a + 1;
  s.cache->mtp_length = s.draft.mtp_committed;
  s.draft.add_hidden(hidden, a + 1, D);
  SpecStats st;
  st.steps = 1;
  st.drafted = uint64_t(n);
  st.accepted = uint64_t(a);
  st.emitted = kept_.size();
  for (int k = 0; k < n; ++k) st.drafted_at[size_t(k)] = 1, st.accepted_at[size_t(k)] = k < a ? 1 : 0;
  {
    std::lock_guard<std::mutex> lk(qm_);
    stats_.spec.add(st);
  }
  const int top = s.req->params_.top_logprobs;
  for (const auto& [t, row] : kept_) {
    Pick pk;
    pk.id = t;
    fill_logprobs(rows + size_t(row) * size_t(vocab_), vocab_, top, &pk);
    emit(s, pk);
    if (!s.req) break;  // ended (end of sequence, max_tokens)
  }
  s.n_draft = 0;
}

// The youngest running sequence holding blocks, `needy` included; nullptr when no other sequence holds any (then
// preempting cannot help).
Scheduler::Slot* Scheduler::preemption_victim(Slot& needy) {
  Slot* v = nullptr;
  for (auto& o : slots_)
    if (&o != &needy && o.req && !o.swapped && !o.cache->blocks().empty() && (!v || o.admitted > v->admitted)) v = &o;
  if (!v) return nullptr;
  return needy.admitted > v->admitted ? &needy : v;
}

// Copies the sequence's blocks (all layers, MTP included) to host memory and gives the blocks back. Published
// blocks stay cached in the pool for others; shared ones lose only this sequence's reference.
void Scheduler::swap_out(Slot& s) {
  const auto& blocks = s.cache->blocks();
  const size_t stride = size_t(pool_->block_bytes());  // rows in the pool's format, bytes as they are
  s.swap.resize(blocks.size() * stride);
  for (size_t k = 0; k < blocks.size(); ++k)
    pool_->backend().download(s.swap.data() + k * stride, pool_->base() + size_t(blocks[k]) * stride, stride);
  s.swap_blocks = int64_t(blocks.size());
  s.swap_length = s.cache->length;
  s.swap_mtp_length = s.cache->mtp_length;
  s.cache->clear();
  s.swapped = true;
  std::lock_guard<std::mutex> lk(qm_);
  ++stats_.kv_preemptions;
}

// Takes as many blocks as the sequence held (plus one free for its next row) and copies its rows back: the
// sequence continues bit for bit as if it had never left. False (nothing changed) while the pool lacks them.
bool Scheduler::swap_in(Slot& s) {
  if (pool_->available() < s.swap_blocks + 1) return false;
  const int64_t bs = opt_.block_size;
  const size_t stride = size_t(pool_->block_bytes());
  DS_CHECK(s.cache->reserve(std::min(s.swap_blocks * bs, s.cache->capacity())), "scheduler: KV reservation failed");
  const auto& blocks = s.cache->blocks();
  DS_CHECK(int64_t(blocks.size()) == s.swap_blocks, "scheduler: swap-in got ", blocks.size(), " blocks, expected ",
           s.swap_blocks);
  for (size_t k = 0; k < blocks.size(); ++k)
    pool_->write_block(blocks[k], s.swap.data() + k * stride);
  s.cache->length = s.swap_length;
  s.cache->mtp_length = s.swap_mtp_length;
  s.published = 0;
  s.publishing = false;  // its blocks are private copies now; the prompt's chain (if any) stays published
  s.swapped = false;
  std::vector<uint8_t>().swap(s.swap);
  return true;
}

bool Scheduler::resume_swapped() {
  order_.clear();
  for (size_t i = 0; i < slots_.size(); ++i)
    if (slots_[i].req && slots_[i].swapped) order_.push_back(i);
  std::sort(order_.begin(), order_.end(), [&](size_t a, size_t b) { return slots_[a].admitted < slots_[b].admitted; });
  for (size_t i : order_)
    if (!swap_in(slots_[i])) return true;  // oldest first: a younger one does not overtake it
  return false;
}

void Scheduler::step() {
  const auto t0 = Clock::now();
  model::Batch& b = batch_;
  b.tokens.clear();
  b.seqs.clear();
  items_.clear();
  reserve_decode_rows();
  if (drafter_) run_drafter();
  const bool hid = drafter_ != nullptr;  // the MTP layer's input: every computed row's hidden state
  for (size_t i = 0; i < slots_.size(); ++i) {
    Slot& s = slots_[i];
    if (!s.req || s.swapped || s.prompt_pos < int64_t(s.req->prompt_.size())) continue;
    b.tokens.push_back(s.next_token);
    if (s.n_draft > 0) b.tokens.insert(b.tokens.end(), s.draft.drafts.begin(), s.draft.drafts.end());
    b.seqs.push_back({s.cache.get(), 1 + s.n_draft, s.n_draft > 0, hid});
    items_.push_back({i, true, 0});
  }
  int64_t budget = opt_.batch_tokens;
  bool any_prefill = false;
  const size_t N = slots_.size();
  for (size_t k = 0; k < N; ++k) {
    const size_t i = (rr_ + k) % N;
    Slot& s = slots_[i];
    if (!s.req || s.swapped) continue;
    const auto& P = s.req->prompt_;
    if (s.prompt_pos >= int64_t(P.size())) continue;
    const int64_t end = std::min<int64_t>((s.prompt_pos / opt_.chunk + 1) * opt_.chunk, int64_t(P.size()));
    const int64_t len = end - s.prompt_pos;
    if (len > budget && any_prefill) continue;
    b.tokens.insert(b.tokens.end(), P.begin() + s.prompt_pos, P.begin() + end);
    b.seqs.push_back({s.cache.get(), len, false, hid});
    items_.push_back({i, false, end});
    budget -= len;
    any_prefill = true;
  }
  ++rr_;
  if (items_.empty()) return;
  const auto tf0 = Clock::now();
  try {
    engine_.model().forward(b, &out_);
  } catch (const std::exception& e) {
    log_warn("scheduler: forward failed: ", e.what());
    for (const auto& it : items_) finish(slots_[it.slot], Finish::Error, "the forward pass failed");
    return;
  }
  const auto tf1 = Clock::now();
  // Rows that yield a token: every decode row, and the last chunk of a prompt.
  uint64_t computed = 0;
  jobs_.clear();
  job_slot_.clear();
  const int64_t D = engine_.config().hidden_size;
  size_t lrow = 0, hrow = 0;  // this item's first logits and hidden rows
  for (size_t j = 0; j < items_.size(); ++j) {
    Slot& s = slots_[items_[j].slot];
    const model::SeqChunk& c = b.seqs[j];
    float* rows = out_.logits.data() + lrow * size_t(vocab_);
    const float* hidden = hid ? out_.hidden.data() + hrow * size_t(D) : nullptr;
    lrow += c.all_logits ? size_t(c.n) : 1;
    hrow += hid ? size_t(c.n) : 0;
    if (!s.req) continue;
    if (items_[j].decode && s.n_draft > 0) {
      accept_step(s, rows, hidden);
      continue;
    }
    if (hid) s.draft.add_hidden(hidden, c.n, D);
    if (!items_[j].decode) {
      const auto& P = s.req->prompt_;
      const int64_t n = items_[j].end - s.prompt_pos;
      computed += uint64_t(n);
      if (hid)  // the token after each row, where the prompt has it (the last row's is the first sampled token)
        s.draft.add_next(P.data() + s.prompt_pos + 1, std::min<int64_t>(items_[j].end + 1, int64_t(P.size())) -
                                                          (s.prompt_pos + 1));
      // Only multi-head rows are published: a later prompt computes them in that form from scratch.
      if (model::Model::attention_form(s.prompt_pos, n) == model::AttentionForm::MultiHead &&
          s.prefill_rows == s.prompt_pos)
        s.prefill_rows = items_[j].end;
      s.prompt_pos = items_[j].end;
      publish_blocks(s);
      if (s.prompt_pos < int64_t(P.size())) continue;
    }
    PickJob job;
    job.logits = rows;
    job.sampler = s.sampler->plain_greedy() ? nullptr : s.sampler.get();  // plain greedy: argmax, no row copy
    job.history = &s.history;
    job.top_logprobs = s.req->params_.top_logprobs;
    job.constraint = s.constraint.get();
    jobs_.push_back(job);
    job_slot_.push_back(items_[j].slot);
  }
  const auto tp0 = Clock::now();
  pick_tokens(jobs_, vocab_, threads_, &picks_);
  const auto tp1 = Clock::now();
  for (size_t k = 0; k < jobs_.size(); ++k) emit(slots_[job_slot_[k]], picks_[k]);
  const auto t1 = Clock::now();
  const double fwd = std::chrono::duration<double>(tf1 - tf0).count();
  const double all = std::chrono::duration<double>(t1 - t0).count();
  std::lock_guard<std::mutex> lk(qm_);
  ++stats_.steps;
  stats_.prompt_tokens_computed += computed;
  stats_.forward_seconds += fwd;
  stats_.overhead_seconds += all - fwd;
  stats_.pick_seconds += std::chrono::duration<double>(tp1 - tp0).count();
  if (!any_prefill) {
    ++stats_.decode_steps;
    stats_.decode_forward_seconds += fwd;
    stats_.decode_overhead_seconds += all - fwd;
  }
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
    // Swapped-out sequences come back before anything new is admitted (they already hold a slot each).
    const bool still_swapped = resume_swapped();
    for (size_t i = 0; i < admitted.size(); ++i) {
      if (!still_swapped && admit(admitted[i])) continue;
      // Not enough free KV blocks yet: this request and those behind it wait at the head of the queue (running
      // sequences give blocks back as they finish; submit() refused prompts the whole pool cannot hold).
      std::lock_guard<std::mutex> lk(qm_);
      queue_.insert(queue_.begin(), admitted.begin() + long(i), admitted.end());
      stats_.queue_depth = int64_t(queue_.size());
      break;
    }
    if (stopping) break;
    step();
    std::lock_guard<std::mutex> lk(qm_);
    int64_t active = 0, used = 0, swapped = 0;
    for (const auto& s : slots_)
      if (s.req) ++active, used += s.cache->length, swapped += s.swapped;
    stats_.active_slots = active;
    stats_.kv_swapped_requests = swapped;
    stats_.kv_used_tokens = used;
    stats_.kv_blocks_used = pool_->n_used();
    stats_.kv_blocks_cached = pool_->n_cached();
    stats_.kv_cached_tokens = pool_->n_cached() * opt_.block_size;
    stats_.kv_evictions = pool_->evictions();
  }
  std::lock_guard<std::mutex> lk(qm_);
  stats_.active_slots = 0;
  stats_.kv_used_tokens = 0;
  stats_.kv_blocks_used = pool_->n_used();
}

}  // namespace ds::rt
