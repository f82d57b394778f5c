// SPDX-License-Identifier: MIT
// The built-in tiny-R1 model (models/tiny-r1) against its PyTorch reference (tests/fixtures/tiny-r1, written by
// tools/train_tiny_r1/make_reference.py from the exported bf16 weights, computed in fp32):
//  - logits, MTP logits within 1e-3, greedy identical; fast precision cosine >= 0.999 and argmax >= 95%;
//  - the prompt ids our tokenizer + chat template produce equal the training script's.
// Held-out accuracy is checked by tiny_r1_accuracy_test.cpp.
#include <gtest/gtest.h>

#include "golden/fixture_util.h"
#include "golden/tiny_r1_util.h"
#include "runtime/sampler.h"
#include "runtime/session.h"

namespace ds::test {
namespace {

std::unique_ptr<rt::Engine> load(ops::Precision p) {
  rt::EngineOptions o;
  o.precision = p;
  return rt::Engine::load(kModel, o);
}

TEST(TinyR1, F32LogitsAndMtpMatchPyTorch) {
  auto e = load(ops::Precision::F32);
  const auto tokens = read_tokens(kRef + "/tokens.npy");
  const auto want = io::npy_read(kRef + "/logits.npy").to_f32();
  rt::Session s(*e);
  std::vector<float> hidden;
  const auto got = s.prefill(tokens, true, &hidden);
  ASSERT_EQ(got.size(), want.size());
  const int64_t V = e->config().vocab_size;
  for (size_t t = 0; t < tokens.size(); ++t)
    EXPECT_LE(max_abs_diff(got.data() + t * V, want.data() + t * V, size_t(V)), 1e-3) << "position " << t;

  ASSERT_TRUE(e->model().has_mtp());
  const auto want_mtp = io::npy_read(kRef + "/mtp_logits.npy").to_f32();
  const int64_t n = int64_t(tokens.size()) - 1;
  std::vector<float> mtp;
  e->model().forward_mtp(&s.cache(), std::vector<int32_t>(tokens.begin() + 1, tokens.end()), hidden.data(), n, &mtp);
  ASSERT_EQ(mtp.size(), want_mtp.size());
  for (int64_t t = 0; t < n; ++t)
    EXPECT_LE(max_abs_diff(mtp.data() + t * V, want_mtp.data() + t * V, size_t(V)), 1e-3) << "MTP row " << t;
}

TEST(TinyR1, F32GreedyMatchesPyTorch) {
  auto e = load(ops::Precision::F32);
  const auto prompt = read_tokens(kRef + "/prompt.npy");
  const auto want = read_tokens(kRef + "/greedy.npy");
  rt::Session s(*e);
  auto logits = s.prefill(prompt);
  std::vector<int32_t> got;
  for (size_t i = 0; i < want.size(); ++i) {
    got.push_back(rt::argmax(logits.data(), e->config().vocab_size));
    if (i + 1 < want.size()) logits = s.decode(got.back());
  }
  EXPECT_EQ(got, want);
}

TEST(TinyR1, FastPrecisionCosineAndArgmax) {
  auto e = load(ops::Precision::Fast);
  const auto tokens = read_tokens(kRef + "/tokens.npy");
  const auto want = io::npy_read(kRef + "/logits.npy").to_f32();
  rt::Session s(*e);
  const auto got = s.prefill(tokens, true);
  const int64_t V = e->config().vocab_size;
  int agree = 0;
  for (size_t t = 0; t < tokens.size(); ++t) {
    EXPECT_GE(cosine(got.data() + t * V, want.data() + t * V, size_t(V)), 0.999) << "position " << t;
    agree += argmax(got.data() + t * V, V) == argmax(want.data() + t * V, V);
  }
  EXPECT_GE(double(agree) / double(tokens.size()), 0.95);
}

TEST(TinyR1, PromptIdsMatchTrainingTokenizer) {
  const auto tk = tok::Tokenizer::from_dir(kModel);
  const auto tmpl = tok::ChatTemplate::from_tokenizer(tk);
  EXPECT_EQ(tiny_r1_prompt(tk, tmpl, "What is 347+589?"), read_tokens(kRef + "/prompt.npy"));
}

}  // namespace
}  // namespace ds::test
