// SPDX-License-Identifier: MIT
#include "model/rope.h"

#include <algorithm>
#include <cmath>

namespace ds::model {

namespace {
double yarn_get_mscale(double scale, double mscale) { return scale <= 1.0 ? 1.0 : 0.1 * mscale * std::log(scale) + 1.0; }

// The rotary dim index at which a frequency makes `num_rotations` turns over the original context.
double correction_dim(double num_rotations, double dim, double base, double max_pos) {
  return dim * std::log(max_pos / (num_rotations * 2.0 * M_PI)) / (2.0 * std::log(base));
}
}  // namespace

RopeTables make_rope_tables(const io::ModelConfig& c) {
  RopeTables t;
  const int64_t dim = c.qk_rope_head_dim, half = dim / 2;
  const double base = c.rope_theta;
  t.inv_freq.resize(size_t(half));
  t.softmax_scale = float(1.0 / std::sqrt(double(c.qk_head_dim())));
  const io::RopeScaling& rs = c.rope_scaling;
  if (!rs.yarn) {
    for (int64_t i = 0; i < half; ++i) t.inv_freq[i] = float(1.0 / std::pow(base, double(2 * i) / double(dim)));
    return t;
  }
  // YaRN: dims rotating fast (i <= low) keep their frequency, slow ones (i >= high) are divided by `factor`,
  // with a linear ramp between. Uses rope_scaling.factor as written (not max_pos / original_max_pos).
  const double factor = rs.factor;
  double low = std::floor(correction_dim(rs.beta_fast, double(dim), base, double(rs.original_max_position_embeddings)));
  double high = std::ceil(correction_dim(rs.beta_slow, double(dim), base, double(rs.original_max_position_embeddings)));
  low = std::max(low, 0.0);
  high = std::min(high, double(dim - 1));
  if (low == high) high += 0.001;  // avoid a zero-width ramp
  for (int64_t i = 0; i < half; ++i) {
    const double pos_freq = std::pow(base, double(2 * i) / double(dim));
    const double extrap = 1.0 / pos_freq, interp = 1.0 / (factor * pos_freq);
    const double ramp = std::clamp((double(i) - low) / (high - low), 0.0, 1.0);
    const double keep = 1.0 - ramp;  // share of the original (extrapolated) frequency
    t.inv_freq[i] = float(interp * (1.0 - keep) + extrap * keep);
  }
  if (rs.attention_factor > 0) t.attn_factor = float(rs.attention_factor);
  else if (rs.mscale != 0 && rs.mscale_all_dim != 0)
    t.attn_factor = float(yarn_get_mscale(factor, rs.mscale) / yarn_get_mscale(factor, rs.mscale_all_dim));
  else t.attn_factor = float(yarn_get_mscale(factor, 1.0));
  // The softmax scale carries mscale(factor, mscale_all_dim)^2 whenever mscale_all_dim is set (HF, remote code,
  // vLLM); it does not depend on the runtime context length.
  if (rs.mscale_all_dim != 0) {
    const double m = yarn_get_mscale(factor, rs.mscale_all_dim);
    t.softmax_scale = float(1.0 / std::sqrt(double(c.qk_head_dim())) * m * m);
  }
  return t;
}

}  // namespace ds::model
