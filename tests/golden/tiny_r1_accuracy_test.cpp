// SPDX-License-Identifier: MIT
// Greedy answers of the built-in tiny-R1 model on the 1,000 held-out arithmetic problems
// (tests/fixtures/tiny-r1/heldout.jsonl, never seen in training), run through the engine, tokenizer and chat
// template: the accuracy must be within 1 point of PyTorch's on the same problems (recorded there by
// tools/train_tiny_r1/make_reference.py), at least 95%, and the verdict (right or wrong) the same as PyTorch's on every
// problem. Every answer is generated twice, plainly and with MTP speculation (one draft per step, the default; two
// drafts on every tenth problem), and the two must be identical token for token. Labelled slow.
#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>
#include <optional>
#include <regex>

#include <nlohmann/json.hpp>

#include "golden/tiny_r1_util.h"
#include "runtime/sampler.h"
#include "runtime/session.h"
#include "runtime/speculative.h"

namespace ds::test {
namespace {

// The integer after the last '=' in the text after </think>, as the training script's evaluation parses it.
std::optional<long long> parse_answer(const std::string& text) {
  const size_t end = text.rfind("</think>");
  if (end == std::string::npos) return std::nullopt;
  const std::string tail = text.substr(end + 8);
  static const std::regex num(R"(=\s*(-?\d+))");
  std::optional<long long> last;
  for (auto it = std::sregex_iterator(tail.begin(), tail.end(), num); it != std::sregex_iterator(); ++it)
    last = std::stoll((*it)[1].str());
  return last;
}

TEST(TinyR1, HeldOutAccuracyMatchesPyTorch) {
  rt::EngineOptions o;
  o.precision = ops::Precision::Fast;
  auto e = rt::Engine::load(kModel, o);
  const auto tk = tok::Tokenizer::from_dir(kModel);
  const auto tmpl = tok::ChatTemplate::from_tokenizer(tk);
  std::ifstream f(kRef + "/heldout.jsonl");
  ASSERT_TRUE(f.good());
  int n = 0, ours = 0, theirs = 0, same = 0, spec_same = 0;
  rt::SpecStats st;
  std::string line;
  while (std::getline(f, line)) {
    const auto p = nlohmann::json::parse(line);
    const auto prompt = tiny_r1_prompt(tk, tmpl, p["question"].get<std::string>());
    rt::Session s(*e);
    auto logits = s.prefill(prompt);
    std::vector<int32_t> out;
    for (int i = 0; i < 400; ++i) {
      const int32_t t = rt::argmax(logits.data(), e->config().vocab_size);
      if (t == tk.eos_id()) break;
      out.push_back(t);
      logits = s.decode(t);
    }
    // The same answer with speculation.
    rt::Session s2(*e);
    rt::Sampler greedy(rt::SamplingParams{0.0f});
    rt::SpecStream spec(s2, greedy, n % 10 == 9 ? 2 : 1);
    spec.prefill(prompt);
    std::vector<int32_t> out2, step;
    for (bool done = false; !done && out2.size() < 400;) {
      step.clear();
      spec.next(&step, 400 - int64_t(out2.size()));
      for (int32_t t : step) {
        if (t == tk.eos_id()) {
          done = true;
          break;
        }
        out2.push_back(t);
      }
    }
    st.add(spec.stats());
    spec_same += out2 == out;
    const auto got = parse_answer(tk.decode(out));
    const bool ok = got && *got == p["result"].get<long long>();
    const bool torch_ok = p["torch_correct"].get<bool>();
    ++n;
    ours += ok;
    theirs += torch_ok;
    same += ok == torch_ok;
  }
  ASSERT_EQ(n, 1000);
  const double acc = double(ours) / n, ref = double(theirs) / n;
  std::printf("tiny-R1 held-out greedy accuracy: deepseek.cpp %.3f, PyTorch %.3f, same verdict on %d/%d\n", acc,
              ref, same, n);
  EXPECT_NEAR(acc, ref, 0.01);
  EXPECT_GE(acc, 0.95) << "the built-in model is meant to answer at least 95% of held-out problems";
  // The README's claim: the same verdict as PyTorch's on every one of the 1,000 problems.
  EXPECT_EQ(same, n) << "problems where deepseek.cpp and PyTorch disagree on right/wrong";
  std::printf("speculation: %d/%d answers identical, acceptance %.2f%% (first draft %.2f%%), %.2f tokens per step\n",
              spec_same, n, 100 * st.acceptance(), 100.0 * double(st.accepted_at[0]) / double(st.drafted_at[0]),
              st.tokens_per_step());
  EXPECT_EQ(spec_same, n) << "answers that speculation changed";
  EXPECT_GT(double(st.accepted_at[0]) / double(st.drafted_at[0]), 0.95) << "first-draft acceptance";
}

}  // namespace
}  // namespace ds::test
