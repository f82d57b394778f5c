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
  const int64_t dim = c.rope_dim(), half = dim / 2;
  const double base = c.rope_theta;
  const double head_dim = double(c.mla() ? c.qk_head_dim() : c.head_dim);
  t.inv_freq.resize(size_t(half));
  t.softmax_scale = float(1.0 / std::sqrt(head_dim));
  const io::RopeScaling& rs = c.rope_scaling;
  auto plain = [&](int64_t i) { return 1.0 / std::pow(base, double(2 * i) / double(dim)); };
  switch (rs.type) {
    case io::RopeType::None:
      for (int64_t i = 0; i < half; ++i)
        t.inv_freq[i] = float(rs.freq_factors.empty() ? plain(i) : plain(i) / double(rs.freq_factors[size_t(i)]));
      return t;
    case io::RopeType::Linear:
      for (int64_t i = 0; i < half; ++i) t.inv_freq[i] = float(plain(i) / rs.factor);
      return t;
    case io::RopeType::Llama3: {
      // Llama 3.1: wavelengths shorter than original / high_freq_factor keep their frequency, longer than
      // original / low_freq_factor are divided by factor, and the band between is interpolated smoothly.
      const double orig = double(rs.original_max_position_embeddings);
      const double low_wavelen = orig / rs.low_freq_factor, high_wavelen = orig / rs.high_freq_factor;
      for (int64_t i = 0; i < half; ++i) {
        const double f = plain(i), wavelen = 2.0 * M_PI / f;
        double out = f;
        if (wavelen > low_wavelen) {
          out = f / rs.factor;
        } else if (wavelen >= high_wavelen) {
          const double s = (orig / wavelen - rs.low_freq_factor) / (rs.high_freq_factor - rs.low_freq_factor);
          out = (1.0 - s) * f / rs.factor + s * f;
        }
        t.inv_freq[i] = float(out);
      }
      return t;
    }
    case io::RopeType::Yarn: break;
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
  // The "attn_factor" key (R1-0528-Qwen3-8B) scales that magnitude further, as vLLM applies it.
  if (rs.attn_factor > 0) t.attn_factor = float(double(t.attn_factor) * rs.attn_factor);
  // The softmax scale carries mscale(factor, mscale_all_dim)^2 whenever mscale_all_dim is set (HF, remote code,
  // vLLM); it does not depend on the runtime context length.
  if (rs.mscale_all_dim != 0) {
    const double m = yarn_get_mscale(factor, rs.mscale_all_dim);
    t.softmax_scale = float(1.0 / std::sqrt(head_dim) * m * m);
  }
  return t;
}

}  // namespace ds::model
