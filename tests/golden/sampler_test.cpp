// SPDX-License-Identifier: MIT
// Sampling: greedy and its equivalents, seeded determinism, the distribution at a temperature, the truncations
// (top-k, top-p, min-p), the penalties, and parameter validation.
#include <gtest/gtest.h>

#include <cmath>
#include <map>

#include "base/error.h"
#include "expect_error.h"
#include "runtime/sampler.h"

namespace ds::rt {
namespace {

const std::vector<float> kLogits = {1.0f, 3.0f, 2.5f, -1.0f, 3.0f, 0.0f};  // ids 1 and 4 tie for the max

TEST(Sampler, GreedyIsArgmaxLowestIdOnTies) {
  SamplingParams p;
  p.temperature = 0;
  Sampler s(p);
  EXPECT_EQ(s.sample(kLogits.data(), int64_t(kLogits.size()), {}), 1);
  EXPECT_EQ(argmax(kLogits.data(), int64_t(kLogits.size())), 1);
}

TEST(Sampler, TopK1AndTinyTopPAndMinP1AreGreedy) {
  const std::vector<float> l = {1.0f, 3.0f, 2.5f, -1.0f, 2.9f, 0.0f};  // no tie at the top
  for (int variant = 0; variant < 3; ++variant) {
    SamplingParams p;
    p.temperature = 1.5f;
    if (variant == 0) p.top_k = 1;
    if (variant == 1) p.top_p = 1e-6f;
    if (variant == 2) p.min_p = 1.0f;
    Sampler s(p);
    for (int i = 0; i < 50; ++i) EXPECT_EQ(s.sample(l.data(), 6, {}), 1) << "variant " << variant;
  }
}

TEST(Sampler, SameSeedSameSequenceOtherSeedDiffers) {
  SamplingParams p;
  p.temperature = 1.0f;
  p.seed = 42;
  Sampler a(p), b(p);
  p.seed = 43;
  Sampler c(p);
  std::vector<int32_t> sa, sb, sc;
  for (int i = 0; i < 200; ++i) {
    sa.push_back(a.sample(kLogits.data(), 6, {}));
    sb.push_back(b.sample(kLogits.data(), 6, {}));
    sc.push_back(c.sample(kLogits.data(), 6, {}));
  }
  EXPECT_EQ(sa, sb);
  EXPECT_NE(sa, sc);
}

TEST(Sampler, FrequenciesFollowSoftmaxAtTemperature) {
  SamplingParams p;
  p.temperature = 0.7f;
  p.seed = 7;
  Sampler s(p);
  const int n = 60000;
  std::vector<int> count(6, 0);
  for (int i = 0; i < n; ++i) ++count[s.sample(kLogits.data(), 6, {})];
  double z = 0;
  for (float l : kLogits) z += std::exp(l / 0.7);
  for (int i = 0; i < 6; ++i) {
    const double want = std::exp(kLogits[i] / 0.7) / z;
    EXPECT_NEAR(double(count[i]) / n, want, 0.01) << "id " << i;
  }
}

TEST(Sampler, TopKAndTopPRestrictTheSupport) {
  SamplingParams p;
  p.temperature = 1.0f;
  p.top_k = 3;  // ids 1, 4, 2
  Sampler s(p);
  for (int i = 0; i < 500; ++i) {
    const int32_t t = s.sample(kLogits.data(), 6, {});
    EXPECT_TRUE(t == 1 || t == 4 || t == 2) << t;
  }
  p.top_k = 0;
  p.top_p = 0.5f;  // ids 1 and 4 hold ~0.36 each: the smallest prefix reaching 0.5 is {1, 4}
  Sampler q(p);
  std::map<int32_t, int> seen;
  for (int i = 0; i < 500; ++i) ++seen[q.sample(kLogits.data(), 6, {})];
  EXPECT_EQ(seen.size(), 2u);
  EXPECT_TRUE(seen.count(1) && seen.count(4));
}

TEST(Sampler, PenaltiesMoveAwayFromSeenTokens) {
  SamplingParams p;
  p.temperature = 0;
  p.repetition_penalty = 2.0f;  // 3.0 -> 1.5 for seen ids 1 and 4: id 2 (2.5) wins
  Sampler s(p);
  EXPECT_EQ(s.sample(kLogits.data(), 6, {1, 4}), 2);
  p.repetition_penalty = 1.0f;
  p.presence_penalty = 1.0f;  // id 1 seen: 2.0; id 4 stays 3.0
  Sampler t(p);
  EXPECT_EQ(t.sample(kLogits.data(), 6, {1}), 4);
  p.presence_penalty = 0;
  p.frequency_penalty = 0.3f;  // id 1 seen twice: 2.4 < 2.5 (id 2); id 4 seen once: 2.7 wins
  Sampler u(p);
  EXPECT_EQ(u.sample(kLogits.data(), 6, {1, 1, 4}), 4);
}

TEST(Sampler, InvalidParametersAreRejected) {
  // Each message names the parameter that is wrong.
  auto bad = [](const char* name, auto edit) {
    SamplingParams p;
    edit(p);
    EXPECT_TRUE(ds::test::throws_with([&] { validate(p); }, {name}));
  };
  bad("temperature", [](SamplingParams& p) { p.temperature = -0.1f; });
  bad("temperature", [](SamplingParams& p) { p.temperature = NAN; });
  bad("top_p", [](SamplingParams& p) { p.top_p = 0; });
  bad("top_p", [](SamplingParams& p) { p.top_p = 1.5f; });
  bad("top_k", [](SamplingParams& p) { p.top_k = -1; });
  bad("min_p", [](SamplingParams& p) { p.min_p = 2; });
  bad("repetition_penalty", [](SamplingParams& p) { p.repetition_penalty = 0; });
  bad("presence_penalty", [](SamplingParams& p) { p.presence_penalty = 3; });
  bad("frequency_penalty", [](SamplingParams& p) { p.frequency_penalty = INFINITY; });
}

}  // namespace
}  // namespace ds::rt
