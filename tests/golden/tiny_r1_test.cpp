// SPDX-License-Identifier: MIT
// The built-in tiny-R1 model (models/tiny-r1) against its PyTorch reference (tests/fixtures/tiny-r1, written by
// tools/train_tiny_r1/make_reference.py from the exported bf16 weights, computed in fp32):
//  - logits, MTP logits within 1e-3, greedy identical; fast precision cosine >= 0.999 and argmax >= 95%;
//  - the prompt ids our tokenizer + chat template produce equal the training script's.
// Held-out accuracy is checked by tiny_r1_accuracy_test.cpp.
#include <gtest/gtest.h>

#include "golden/golden_checks.h"
#include "golden/tiny_r1_util.h"

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
  const int64_t V = e->config().vocab_size;
  expect_rows_close(s.prefill(tokens, true, &hidden), want, int64_t(tokens.size()), V, 1e-3, "position");

  ASSERT_TRUE(e->model().has_mtp());
  const auto want_mtp = io::npy_read(kRef + "/mtp_logits.npy").to_f32();
  const int64_t n = int64_t(tokens.size()) - 1;
  std::vector<float> mtp;
  e->model().forward_mtp(&s.cache(), std::vector<int32_t>(tokens.begin() + 1, tokens.end()), hidden.data(), n, &mtp);
  expect_rows_close(mtp, want_mtp, n, V, 1e-3, "MTP row");
}

TEST(TinyR1, F32GreedyMatchesPyTorch) {
  auto e = load(ops::Precision::F32);
  const auto prompt = read_tokens(kRef + "/prompt.npy");
  const auto want = read_tokens(kRef + "/greedy.npy");
  rt::Session s(*e);
  EXPECT_EQ(greedy_continuation(s, prompt, want.size()), want);
}

TEST(TinyR1, FastPrecisionCosineAndArgmax) {
  auto e = load(ops::Precision::Fast);
  const auto tokens = read_tokens(kRef + "/tokens.npy");
  const auto want = io::npy_read(kRef + "/logits.npy").to_f32();
  rt::Session s(*e);
  expect_fast_agreement(s.prefill(tokens, true), want, int64_t(tokens.size()), e->config().vocab_size);
}

TEST(TinyR1, PromptIdsMatchTrainingTokenizer) {
  const auto tk = tok::Tokenizer::from_dir(kModel);
  const auto tmpl = tok::ChatTemplate::from_tokenizer(tk);
  EXPECT_EQ(tiny_r1_prompt(tk, tmpl, "What is 347+589?"), read_tokens(kRef + "/prompt.npy"));
}

}  // namespace
}  // namespace ds::test
