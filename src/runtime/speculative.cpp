// SPDX-License-Identifier: MIT
#include "runtime/speculative.h"

#include <algorithm>
#include <cmath>
#include <unordered_map>

#include "base/error.h"
#include "runtime/session.h"

namespace ds::rt {

void SpecStats::add(const SpecStats& o) {
  steps += o.steps;
  drafted += o.drafted;
  accepted += o.accepted;
  emitted += o.emitted;
  for (int k = 0; k < kMaxDraft; ++k) drafted_at[k] += o.drafted_at[k], accepted_at[k] += o.accepted_at[k];
}

void DraftState::clear() {
  hidden.clear();
  next.clear();
  rows = 0;
  drafts.clear();
  q.clear();
  mtp_committed = 0;
}

void DraftState::add_hidden(const float* h, int64_t n, int64_t width) {
  hidden.insert(hidden.end(), h, h + n * width);
  rows += n;
}

void DraftState::add_next(const int32_t* t, int64_t n) { next.insert(next.end(), t, t + n); }

int resolve_draft(const model::Model& m, int requested) {
  if (requested < 0) return m.has_mtp() ? 1 : 0;
  DS_CHECK(requested <= kMaxDraft, "--draft ", requested, " is out of range [0, ", kMaxDraft, "]");
  DS_CHECK(requested == 0 || m.has_mtp(), "--draft ", requested,
           ": this checkpoint has no MTP layer to draft with (num_nextn_predict_layers = ",
           m.config().num_nextn_predict_layers, ")");
  return requested;
}

namespace {
// Picks a draft from the MTP logits `l` the way the sequence's sampler would pick a token: greedy samplers take
// their (penalised) argmax; sampling ones draw from their distribution, which is kept as q.
void draft_one(const float* l, int64_t V, DraftJob& j, std::vector<int32_t>& hist) {
  DraftState& st = *j.state;
  hist.assign(j.history->begin(), j.history->end());
  hist.insert(hist.end(), st.drafts.begin(), st.drafts.end());
  if (j.sampler->greedy()) {
    st.drafts.push_back(j.sampler->sample(l, V, hist));
    return;
  }
  st.q.emplace_back();
  auto& q = st.q.back();
  j.sampler->distribution(l, V, hist, &q);
  double r = j.sampler->uniform();
  int32_t pick = q.back().first;
  for (const auto& [id, p] : q) {
    r -= p;
    if (r < 0) {
      pick = id;
      break;
    }
  }
  st.drafts.push_back(pick);
}
}  // namespace

void Drafter::run(std::vector<DraftJob>& jobs) {
  const int64_t D = m_.config().hidden_size, V = m_.config().vocab_size;
  // 1. Every sequence's waiting rows whose next token is known.
  b_.tokens.clear();
  b_.seqs.clear();
  h_.clear();
  std::vector<size_t> in;  // job index of each chunk
  for (size_t i = 0; i < jobs.size(); ++i) {
    DraftJob& j = jobs[i];
    DraftState& st = *j.state;
    st.drafts.clear();
    st.q.clear();
    const int64_t ready = std::min<int64_t>(st.rows, int64_t(st.next.size()));
    DS_CHECK(j.n_draft == 0 || (ready == st.rows && ready > 0), "draft: the next token of MTP row ",
             j.cache->mtp_length + ready, " is not known");
    if (ready == 0) continue;
    b_.tokens.insert(b_.tokens.end(), st.next.begin(), st.next.begin() + ready);
    b_.seqs.push_back({j.cache, ready, false, j.n_draft > 1});
    h_.insert(h_.end(), st.hidden.begin(), st.hidden.begin() + ready * D);
    in.push_back(i);
  }
  if (b_.seqs.empty()) return;
  m_.forward_mtp(b_, h_.data(), &out_);
  std::vector<size_t> chain;  // jobs drafting more
  std::vector<float> chain_h;
  int64_t hrow = 0;
  for (size_t c = 0; c < in.size(); ++c) {
    DraftJob& j = jobs[in[c]];
    DraftState& st = *j.state;
    const int64_t n = b_.seqs[c].n;
    st.hidden.erase(st.hidden.begin(), st.hidden.begin() + n * D);
    st.next.erase(st.next.begin(), st.next.begin() + n);
    st.rows -= n;
    st.mtp_committed = j.cache->mtp_length;
    if (j.n_draft > 0) {
      draft_one(out_.logits.data() + c * size_t(V), V, j, hist_);
      if (j.n_draft > 1) {
        chain.push_back(in[c]);
        chain_h.insert(chain_h.end(), out_.hidden.begin() + (hrow + n - 1) * D, out_.hidden.begin() + (hrow + n) * D);
      }
    }
    if (b_.seqs[c].want_hidden) hrow += n;
  }
  // 2. Chained drafts: the MTP layer fed its own output hidden state and its last draft, one row per sequence.
  for (int k = 1; !chain.empty(); ++k) {
    b_.tokens.clear();
    b_.seqs.clear();
    for (size_t i : chain) {
      b_.tokens.push_back(jobs[i].state->drafts.back());
      b_.seqs.push_back({jobs[i].cache, 1, false, true});
    }
    m_.forward_mtp(b_, chain_h.data(), &out_);
    std::vector<size_t> more;
    std::vector<float> more_h;
    for (size_t c = 0; c < chain.size(); ++c) {
      DraftJob& j = jobs[chain[c]];
      draft_one(out_.logits.data() + c * size_t(V), V, j, hist_);
      if (int(j.state->drafts.size()) < j.n_draft) {
        more.push_back(chain[c]);
        more_h.insert(more_h.end(), out_.hidden.begin() + int64_t(c) * D, out_.hidden.begin() + int64_t(c + 1) * D);
      }
    }
    chain.swap(more);
    chain_h.swap(more_h);
  }
}

int accept_drafts(const float* rows, int64_t V, DraftState& st, Sampler& sampler, const std::vector<int32_t>& history,
                  std::vector<std::pair<int32_t, int>>* out) {
  const int n = int(st.drafts.size());
  std::vector<int32_t> hist(history);
  int a = 0;
  if (sampler.greedy()) {
    // Each row's token as plain decoding would pick it; a draft stands while it equals that token.
    for (int k = 0; k <= n; ++k) {
      const int32_t t = sampler.sample(rows + size_t(k) * size_t(V), V, hist);
      out->push_back({t, k});
      if (k == n || t != st.drafts[size_t(k)]) break;
      hist.push_back(t);
      ++a;
    }
    return a;
  }
  std::vector<std::pair<int32_t, double>> p;
  std::unordered_map<int32_t, double> qmap;
  for (int k = 0; k < n; ++k) {
    const float* row = rows + size_t(k) * size_t(V);
    sampler.distribution(row, V, hist, &p);
    const auto& q = st.q[size_t(k)];
    const int32_t x = st.drafts[size_t(k)];
    double px = 0, qx = 0;
    for (const auto& [id, v] : p)
      if (id == x) px = v;
    for (const auto& [id, v] : q)
      if (id == x) qx = v;
    if (qx > 0 && sampler.uniform() * qx < px) {  // accepted with probability min(1, p(x) / q(x))
      out->push_back({x, k});
      hist.push_back(x);
      ++a;
      continue;
    }
    // Rejected: draw from the normalised max(0, p - q) (p itself where q covers it entirely: p = q).
    qmap.clear();
    for (const auto& [id, v] : q) qmap[id] = v;
    double mass = 0;
    for (auto& [id, v] : p) {
      const auto it = qmap.find(id);
      v = std::max(0.0, v - (it == qmap.end() ? 0.0 : it->second));
      mass += v;
    }
    if (!(mass > 0)) sampler.distribution(row, V, hist, &p), mass = 1.0;
    double r = sampler.uniform() * mass;
    int32_t pick = -1;
    for (const auto& [id, v] : p) {
      if (v > 0) pick = id;
      r -= v;
      if (r < 0 && v > 0) break;
    }
    out->push_back({pick, k});
    return a;
  }
  out->push_back({sampler.sample(rows + size_t(n) * size_t(V), V, hist), n});  // every draft accepted: one more
  return a;
}

SpecStream::SpecStream(Session& s, Sampler& sampler, int n_draft)
    : s_(s), sampler_(sampler), n_draft_(resolve_draft(s.engine().model(), n_draft)), drafter_(s.engine().model()) {}

int64_t SpecStream::room() const { return s_.capacity() - s_.length() + (pending_ < 0 ? 1 : 0); }

void SpecStream::prefill(const std::vector<int32_t>& tokens) {
  DS_CHECK(pending_ < 0, "prefill after generating: put the pending token in first");
  const int64_t D = s_.engine().config().hidden_size;
  std::vector<float> hidden;
  // A cache that already holds positions without MTP rows (a conversation's earlier turns): the MTP layer continues
  // from here; the rows it skips only steer drafts, never outputs.
  if (n_draft_ > 0 && st_.rows == 0) s_.cache().mtp_length = s_.length();
  logits_ = s_.prefill(tokens, false, n_draft_ > 0 ? &hidden : nullptr);
  if (n_draft_ == 0) return;
  st_.add_hidden(hidden.data(), int64_t(tokens.size()), D);
  st_.add_next(tokens.data() + 1, int64_t(tokens.size()) - 1);
}

void SpecStream::next(std::vector<int32_t>* out, int64_t max_n) {
  DS_CHECK(max_n >= 1, "next: max_n must be >= 1");
  const int64_t V = s_.engine().config().vocab_size, D = s_.engine().config().hidden_size;
  if (pending_ < 0) {  // the first token, from the prompt's logits
    DS_CHECK(!logits_.empty(), "next before prefill");
    pending_ = sampler_.sample(logits_.data(), V, s_.history());
    if (n_draft_ > 0) st_.add_next(&pending_, 1);
    out->push_back(pending_);
    return;
  }
  DS_CHECK(s_.length() < s_.capacity(), "context is full: ", s_.length(), " tokens");
  // Drafts: no more than the room after the pending token and the tokens still wanted after it.
  const int n = int(std::min<int64_t>({int64_t(n_draft_), s_.capacity() - s_.length() - 1, max_n - 1}));
  if (n <= 0) {
    std::vector<float> hidden;
    const std::vector<float> logits = s_.prefill({pending_}, false, n_draft_ > 0 ? &hidden : nullptr);
    pending_ = sampler_.sample(logits.data(), V, s_.history());
    if (n_draft_ > 0) {  // the MTP row of this position waits for the next draft
      st_.add_hidden(hidden.data(), 1, D);
      st_.add_next(&pending_, 1);
    }
    out->push_back(pending_);
    return;
  }
  std::vector<DraftJob> jobs(1);
  jobs[0].cache = &s_.cache();
  jobs[0].state = &st_;
  jobs[0].n_draft = n;
  jobs[0].sampler = &sampler_;
  std::vector<int32_t> hist = s_.history();
  hist.push_back(pending_);
  jobs[0].history = &hist;
  drafter_.run(jobs);
  if (hook_) hook_(st_.drafts, st_.q);
  const int64_t P = s_.length();
  std::vector<int32_t> chunk = {pending_};
  chunk.insert(chunk.end(), st_.drafts.begin(), st_.drafts.end());
  std::vector<float> hidden;
  const std::vector<float> rows = s_.prefill(chunk, true, &hidden);
  kept_.clear();
  const int a = accept_drafts(rows.data(), V, st_, sampler_, hist, &kept_);
  s_.rollback(P + a + 1);
  s_.cache().mtp_length = st_.mtp_committed;
  stats_.steps += 1;
  stats_.drafted += uint64_t(n);
  stats_.accepted += uint64_t(a);
  stats_.emitted += kept_.size();
  for (int k = 0; k < n; ++k) stats_.drafted_at[size_t(k)] += 1, stats_.accepted_at[size_t(k)] += k < a ? 1 : 0;
  // The MTP rows for the kept positions P..P+a: the verify chunk's hidden states and the tokens after them.
  st_.add_hidden(hidden.data(), a + 1, D);
  for (const auto& [t, row] : kept_) st_.add_next(&t, 1), out->push_back(t);
  pending_ = kept_.back().first;
}

}  // namespace ds::rt
