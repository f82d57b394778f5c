// SPDX-License-Identifier: MIT
// Self-consistency of the engine's execution paths, each of which the golden test checks only indirectly:
// token-by-token decoding (absorbed MLA over the latent cache) vs one prefill (multi-head form), chunked prefill,
// and batches of different sequences vs each sequence alone (bitwise: the kernels sum in an order independent of
// the batch composition, so continuous batching cannot change a greedy output).
#include <gtest/gtest.h>

#include "base/error.h"
#include "expect_error.h"
#include "golden/fixture_util.h"
#include "runtime/session.h"

namespace ds::test {
namespace {

std::unique_ptr<rt::Engine> load(const std::string& f, ops::Precision p = ops::Precision::F32) {
  rt::EngineOptions o;
  o.precision = p;
  return rt::Engine::load(fixture_dir(f), o);
}

class Consistency : public ::testing::TestWithParam<std::string> {};

TEST_P(Consistency, DecodeStepsMatchPrefill) {
  auto e = load(GetParam());
  const auto tokens = read_tokens(fixture_dir(GetParam()) + "/tokens.npy");
  const int64_t V = e->config().vocab_size;
  rt::Session whole(*e);
  const auto ref = whole.prefill(tokens, true);
  rt::Session step(*e);
  for (size_t t = 0; t < tokens.size(); ++t) {
    const auto l = step.decode(tokens[t]);
    ASSERT_EQ(int64_t(l.size()), V);
    EXPECT_LE(max_abs_diff(l.data(), ref.data() + t * V, size_t(V)), 1e-4) << "position " << t;
  }
}

TEST_P(Consistency, ChunkedPrefillMatchesWhole) {
  auto e = load(GetParam());
  const auto tokens = read_tokens(fixture_dir(GetParam()) + "/tokens.npy");
  rt::Session whole(*e);
  const auto ref = whole.prefill(tokens, true);
  rt::Session chunked(*e, 0, /*max_chunk=*/7);
  const auto got = chunked.prefill(tokens, true);
  ASSERT_EQ(got.size(), ref.size());
  EXPECT_LE(max_abs_diff(got.data(), ref.data(), ref.size()), 1e-4);
}

TEST_P(Consistency, BatchOfSequencesMatchesEachAlone) {
  auto e = load(GetParam());
  const auto tokens = read_tokens(fixture_dir(GetParam()) + "/tokens.npy");
  const int64_t V = e->config().vocab_size;
  // Three different sequences: a prefix, the reversed prompt, and a shifted slice.
  std::vector<std::vector<int32_t>> seqs = {
      std::vector<int32_t>(tokens.begin(), tokens.begin() + 11),
      std::vector<int32_t>(tokens.rbegin(), tokens.rbegin() + 17),
      std::vector<int32_t>(tokens.begin() + 5, tokens.begin() + 8)};
  std::vector<std::vector<float>> alone;
  for (const auto& s : seqs) {
    rt::Session one(*e);
    alone.push_back(one.prefill(s, true));
  }
  std::vector<std::unique_ptr<model::KvCache>> caches;
  model::Batch b;
  for (const auto& s : seqs) {
    caches.push_back(e->model().new_cache(64));
    b.tokens.insert(b.tokens.end(), s.begin(), s.end());
    b.seqs.push_back({caches.back().get(), int64_t(s.size()), true, false});
  }
  model::ForwardOutput out;
  e->model().forward(b, &out);
  int64_t row = 0;
  for (size_t i = 0; i < seqs.size(); ++i)
    for (size_t t = 0; t < seqs[i].size(); ++t, ++row)
      EXPECT_LE(max_abs_diff(out.logits.data() + row * V, alone[i].data() + t * V, size_t(V)), 0.0)
          << "sequence " << i << " position " << t;
  // One batched decode step (one token each, absorbed form) against each sequence decoding alone.
  model::Batch d;
  for (size_t i = 0; i < seqs.size(); ++i) {
    d.tokens.push_back(int32_t(i + 3));
    d.seqs.push_back({caches[i].get(), 1, false, false});
  }
  e->model().forward(d, &out);
  for (size_t i = 0; i < seqs.size(); ++i) {
    rt::Session one(*e);
    one.prefill(seqs[i]);
    const auto l = one.decode(int32_t(i + 3));
    EXPECT_EQ(max_abs_diff(out.logits.data() + i * V, l.data(), size_t(V)), 0.0) << "sequence " << i;
  }
}

TEST(Consistency, ContextOverflowIsAnError) {
  auto e = load("tiny-v3");
  rt::Session s(*e, 8);
  EXPECT_TRUE(throws_with([&] { s.prefill(std::vector<int32_t>(9, 1)); }, {"context", "8"}));
  s.prefill(std::vector<int32_t>(8, 1));
  EXPECT_TRUE(throws_with([&] { s.decode(1); }, {"context", "8"}));
}

TEST(Consistency, OutOfRangeTokenIsAnError) {
  auto e = load("tiny-v3");
  rt::Session s(*e);
  const std::string V = std::to_string(e->config().vocab_size);
  EXPECT_TRUE(throws_with([&] { s.prefill({1, int32_t(e->config().vocab_size)}); }, {"token id " + V, "[0, " + V + ")"}));
  EXPECT_TRUE(throws_with([&] { s.prefill({-1}); }, {"token id -1", "[0, " + V + ")"}));
}

INSTANTIATE_TEST_SUITE_P(Fixtures, Consistency, ::testing::Values("tiny-v3", "tiny-v2-lite", "tiny-v2", "tiny-v3-fp8",
                                                             "tiny-v32", "tiny-v32-fp8"),
                         [](const auto& info) {
                           std::string n = info.param;
                           for (char& ch : n) if (ch == '-') ch = '_';
                           return n;
                         });

}  // namespace
}  // namespace ds::test
