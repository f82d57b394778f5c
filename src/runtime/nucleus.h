// SPDX-License-Identifier: MIT
// The vocabulary-wide parts of sampling, built to cost a few streaming passes over [vocab] rather than a sort:
// float weights exp((l - max) / T) from a branch-free exp that vectorises, and top-p nucleus selection by a histogram
// of probability mass over logit buckets, so only the one bucket that straddles the top-p boundary is ordered exactly.
// Order everywhere is (logit descending, id ascending), which is what a stable sort of the logits would give.
#pragma once
#include <cstdint>
#include <vector>

namespace ds::rt {

// w[i] = exp((l[i] - mx) * inv_t) for l[i] <= mx; 0 for NaN and -inf logits and below exp(-87). Relative error
// ~2e-7 (a float's precision), so weights are exact enough for sampling; sums over them belong in double.
void exp_weights(const float* l, int64_t n, float mx, float inv_t, float* w);

// One candidate of an exact selection: its logit (the order), weight (the mass) and token id.
struct MassEntry {
  float logit;
  float weight;
  int32_t id;
};

// Moves the fewest best entries ((logit desc, id asc) order) whose weights sum to at least `need` to the front of
// e and returns how many (all of them when the total falls short): a quickselect guided by mass, expected O(n).
int64_t select_mass(std::vector<MassEntry>& e, double need);

// Reusable buffers for nucleus(): a step allocates nothing once they have grown.
struct NucleusScratch {
  std::vector<double> bucket_mass;
  std::vector<uint16_t> bucket;
  std::vector<MassEntry> edge;
};

// Top-p over the whole vocabulary: with w = exp_weights(l, V, mx, inv_t), writes to `cand` the fewest tokens, in
// (logit desc, id asc) order of selection, whose weights sum to at least top_p of the total; returns how many.
// Tokens of the buckets above the boundary come in id order, then the boundary bucket's chosen ones.
int64_t nucleus(const float* l, const float* w, int64_t V, float mx, float inv_t, double top_p,
                std::vector<int32_t>* cand, NucleusScratch* s);

}  // namespace ds::rt
