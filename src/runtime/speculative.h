// SPDX-License-Identifier: MIT
// Speculative decoding with the checkpoint's own MTP layer. The MTP layer row at position i takes the main model's
// hidden state h_i and the token t_{i+1} and predicts t_{i+2}; chained on its own output it drafts up to
// kMaxDraft tokens. The main model then verifies a sequence's next token and its drafts in one chunk of 1 + n tokens
// (absorbed attention, so each row gets the bits it would get decoded alone) and keeps the accepted prefix plus its
// own token at the first disagreement: greedy output is token for token the plain output, and sampled output has
// exactly the plain distribution (accept a draft x with probability min(1, p(x)/q(x)), else draw from the
// normalised max(0, p - q); p and q after the same penalties / temperature / top-k / top-p / min-p).
//
// The pieces are per sequence (DraftState, accept) and per batch (Drafter runs the MTP layer for every sequence of
// a step at once), so the CLI's single sequence (SpecStream) and the server's continuous batch share them.
#pragma once
#include <array>
#include <cstdint>
#include <functional>
#include <utility>
#include <vector>

#include "model/model.h"
#include "runtime/sampler.h"

namespace ds::rt {

class Session;

constexpr int kMaxDraft = 4;

struct SpecStats {
  uint64_t steps = 0;     // verify steps (plain steps of a sequence without drafts are not counted)
  uint64_t drafted = 0;   // draft tokens verified
  uint64_t accepted = 0;  // of them accepted
  uint64_t emitted = 0;   // tokens the verify steps produced (accepted + the main model's own)
  std::array<uint64_t, kMaxDraft> drafted_at{}, accepted_at{};  // by draft position
  void add(const SpecStats& o);
  double acceptance() const { return drafted ? double(accepted) / double(drafted) : 0.0; }
  double tokens_per_step() const { return steps ? double(emitted) / double(steps) : 0.0; }
};

// What one sequence carries between steps.
struct DraftState {
  // MTP rows not yet run, at positions cache->mtp_length..: their hidden states [rows, hidden] and the token after
  // each (the last row's may not be known yet: it is the token the next step samples).
  std::vector<float> hidden;
  std::vector<int32_t> next;
  int64_t rows = 0;
  // The current drafts (filled by Drafter::run) and, when sampling, the distribution each was drawn from.
  std::vector<int32_t> drafts;
  std::vector<std::vector<std::pair<int32_t, double>>> q;
  int64_t mtp_committed = 0;  // cache->mtp_length before the chained draft rows (what a verify rolls back to)

  void clear();
  // Appends main-model hidden rows (the positions after those already waiting) and/or known next tokens.
  void add_hidden(const float* h, int64_t n, int64_t width);
  void add_next(const int32_t* t, int64_t n);
};

struct DraftJob {
  model::KvCache* cache = nullptr;
  DraftState* state = nullptr;
  int n_draft = 0;                                // drafts wanted now (0: only run the waiting rows whose next is known)
  Sampler* sampler = nullptr;                     // the sequence's sampler: drafts follow its transforms
  const std::vector<int32_t>* history = nullptr;  // tokens before the next one (penalties)
};

// Runs the MTP layer for a batch of sequences: first every sequence's waiting rows whose next token is known (one
// forward), then, for the jobs that want drafts (their waiting rows must all be known), n_draft - 1 chained one-row
// forwards. Each drafting sequence's state gets its drafts (and their distributions when its sampler samples).
class Drafter {
 public:
  explicit Drafter(model::Model& m) : m_(m) {}
  void run(std::vector<DraftJob>& jobs);

 private:
  model::Model& m_;
  model::Batch b_;
  model::ForwardOutput out_;
  std::vector<float> h_;
  std::vector<int32_t> hist_;
};

// The verify step's decision for one sequence. `rows` [1 + drafts, vocab]: the main model's logits for the chunk
// (its sampled next token, then the drafts). `history`: the tokens up to the chunk's first, included (penalties).
// Appends the
// tokens to keep (accepted drafts, then the main model's own) to `out` with the row each comes from, and fills the
// state's MTP rows for the next step (the verify chunk's hidden states `hidden` [1 + drafts, width] of the kept
// positions). Returns the number of drafts accepted.
int accept_drafts(const float* rows, int64_t vocab, DraftState& st, Sampler& sampler,
                  const std::vector<int32_t>& history, std::vector<std::pair<int32_t, int>>* out);

// One sequence over a Session, plain or speculative (the CLI's generate and run, bench): prefill, then next() yields
// one token (plain) or the accepted drafts plus one (speculative) per step. Greedy outputs are identical either way.
class SpecStream {
 public:
  // n_draft 0: plain decoding. Throws ds::Error when n_draft > 0 and the model has no MTP layer.
  SpecStream(Session& s, Sampler& sampler, int n_draft);
  // Appends prompt tokens (prefill) to the session.
  void prefill(const std::vector<int32_t>& tokens);
  // Appends the next tokens (at least one, at most `max_n`) to `out`; each but the last is in the cache. Throws at a
  // full context (check room() first).
  void next(std::vector<int32_t>* out, int64_t max_n);
  // Tokens next() can still produce before the context is full (each needs the one before it in the cache).
  int64_t room() const;
  const SpecStats& stats() const { return stats_; }
  // Tests: sees (and may change) every step's drafts before they are verified, e.g. to force rejections. When
  // sampling, the drafts' distributions come along and must stay what the changed drafts were drawn from.
  using DraftHook = std::function<void(std::vector<int32_t>& drafts,
                                       std::vector<std::vector<std::pair<int32_t, double>>>& q)>;
  void set_draft_hook(DraftHook h) { hook_ = std::move(h); }

 private:
  Session& s_;
  Sampler& sampler_;
  int n_draft_;
  Drafter drafter_;
  DraftState st_;
  SpecStats stats_;
  std::vector<float> logits_;  // the last prefill's logits (the first token is sampled from them)
  int32_t pending_ = -1;       // sampled, not yet in the cache
  std::vector<std::pair<int32_t, int>> kept_;
  DraftHook hook_;
};

// `--draft` resolved against the model: a negative request (the default) means 1 when the model has an MTP layer,
// else 0; an explicit request above 0 needs the layer (ds::Error otherwise) and is at most kMaxDraft.
int resolve_draft(const model::Model& m, int requested);

}  // namespace ds::rt
