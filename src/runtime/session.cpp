// SPDX-License-Identifier: MIT
#include "runtime/session.h"

#include <algorithm>

#include "base/error.h"

namespace ds::rt {

Session::Session(Engine& engine, int64_t ctx, int64_t max_chunk)
    : engine_(engine), cache_(engine.model().new_cache(ctx > 0 ? ctx : engine.default_ctx())),
      max_chunk_(std::max<int64_t>(1, max_chunk)) {}

std::vector<float> Session::prefill(const std::vector<int32_t>& tokens, bool all_logits, std::vector<float>* hidden) {
  DS_CHECK(!tokens.empty(), "prefill needs at least one token");
  DS_CHECK(length() + int64_t(tokens.size()) <= capacity(), "prompt of ", tokens.size(), " tokens (after ", length(),
           " cached) exceeds the context size ", capacity());
  std::vector<float> logits;
  if (hidden) hidden->clear();
  model::ForwardOutput out;
  for (size_t off = 0; off < tokens.size(); off += size_t(max_chunk_)) {
    const size_t n = std::min(tokens.size() - off, size_t(max_chunk_));
    const bool last = off + n == tokens.size();
    model::Batch b;
    b.tokens.assign(tokens.begin() + off, tokens.begin() + off + n);
    b.seqs.push_back({cache_.get(), int64_t(n), all_logits, hidden != nullptr});
    engine_.model().forward(b, &out);
    if (all_logits || last) logits.insert(logits.end(), out.logits.begin(), out.logits.end());
    if (hidden) hidden->insert(hidden->end(), out.hidden.begin(), out.hidden.end());
  }
  history_.insert(history_.end(), tokens.begin(), tokens.end());
  return logits;
}

std::vector<float> Session::decode(int32_t token) { return prefill({token}); }

void Session::rollback(int64_t n) {
  DS_CHECK(n >= 0 && n <= length(), "rollback to ", n, " of ", length(), " positions");
  cache_->length = n;
  cache_->mtp_length = std::min(cache_->mtp_length, n);
  history_.resize(size_t(n));
}

void Session::reset() {
  cache_->clear();  // gives the blocks back to the session's private pool
  history_.clear();
}

}  // namespace ds::rt
