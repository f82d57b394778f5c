// SPDX-License-Identifier: MIT
// A per-sequence restriction of the next token (the server's JSON output, server/json_constraint.h). A request
// carries a prototype in GenParams; the scheduler clones it for every sequence it admits (so the n choices of a
// request, and a sequence swapped out and back, each keep their own state), masks the sequence's logits row before
// each token choice, and advances it with every token the sequence emits. A constrained sequence never drafts.
#pragma once
#include <cstdint>
#include <memory>

namespace ds::rt {

class LogitConstraint {
 public:
  virtual ~LogitConstraint() = default;
  virtual std::unique_ptr<LogitConstraint> clone() const = 0;
  // Sets the logits [vocab] of the tokens not allowed next to -inf (at least one token stays allowed).
  virtual void mask(float* logits, int64_t vocab) = 0;
  // The sequence emitted `token` (never an end-of-sequence token: those end it).
  virtual void advance(int32_t token) = 0;
};

}  // namespace ds::rt
