// SPDX-License-Identifier: MIT
// End-to-end agreement with the references on the DeepSeek fixtures (tolerances from the fixtures' README: fp32 logits
// within 1e-3, greedy identical, MTP within 1e-3; fast precision cosine >= 0.999 per row and argmax agreement >= 95%).
// The V3.2 fixtures (sparse attention) also fix the positions the indexer chooses: identical in every layer.
#include <gtest/gtest.h>

#include <filesystem>

#include "golden/golden_checks.h"
#include "runtime/engine.h"
#include "runtime/session.h"
#include "runtime/speculative.h"

namespace ds::test {
namespace {

struct Case {
  std::string fixture;
  std::string backend;
};
// Names the case in gtest's (and so ctest's) listing instead of a byte dump.
void PrintTo(const Case& c, std::ostream* os) { *os << c.fixture << " on " << c.backend; }

class Golden : public ::testing::TestWithParam<Case> {
 protected:
  // The cuda cases exist only in -DDS_CUDA=ON builds; without a device they are skipped, visibly.
  void SetUp() override {
    std::string why;
    if (GetParam().backend == "cuda" && !rt::cuda_usable(&why)) GTEST_SKIP() << "cuda backend not run: " << why;
  }
};

std::vector<Case> cases() {
  std::vector<Case> v = {{"tiny-v3", "cpu"},  {"tiny-v2-lite", "cpu"}, {"tiny-v2", "cpu"},
                         {"tiny-v3-fp8", "cpu"}, {"tiny-v3", "ref"},     {"tiny-v3-fp8", "ref"},
                         {"tiny-v32", "cpu"}, {"tiny-v32-fp8", "cpu"}, {"tiny-v32", "ref"}};
#ifdef DS_HAVE_CUDA
  for (const char* f : {"tiny-v3", "tiny-v2-lite", "tiny-v2", "tiny-v3-fp8"}) v.push_back({f, "cuda"});
#endif
  return v;
}

std::unique_ptr<rt::Engine> load(const Case& c, ops::Precision p) {
  rt::EngineOptions o;
  o.backend = c.backend;
  o.precision = p;
  return rt::Engine::load(fixture_dir(c.fixture), o);
}

TEST_P(Golden, F32LogitsMatchReference) {
  const Case c = GetParam();
  auto e = load(c, ops::Precision::F32);
  const auto tokens = read_tokens(fixture_dir(c.fixture) + "/tokens.npy");
  const io::NpyArray ref = io::npy_read(fixture_dir(c.fixture) + "/logits.npy");
  const auto want = ref.to_f32();
  rt::Session s(*e);
  const auto got = s.prefill(tokens, true);
  ASSERT_GT(got.size(), 0u);
  expect_rows_close(got, want, int64_t(tokens.size()), e->config().vocab_size, 1e-3, "position");
}

TEST_P(Golden, F32GreedyMatchesReference) {
  const Case c = GetParam();
  auto e = load(c, ops::Precision::F32);
  const auto tokens = read_tokens(fixture_dir(c.fixture) + "/tokens.npy");
  const auto want = read_tokens(fixture_dir(c.fixture) + "/greedy.npy");
  ASSERT_FALSE(want.empty());
  rt::Session s(*e);
  EXPECT_EQ(greedy_continuation(s, tokens, want.size()), want);
}

// Speculation with the MTP layer must not change a greedy token, with 1..4 drafts per step, nor when every draft is
// made wrong (each step then takes the rejection path).
TEST_P(Golden, F32GreedyWithSpeculationMatchesReference) {
  const Case c = GetParam();
  auto e = load(c, ops::Precision::F32);
  if (!e->model().has_mtp()) GTEST_SKIP() << c.fixture << " has no MTP layer: nothing drafts";
  const auto tokens = read_tokens(fixture_dir(c.fixture) + "/tokens.npy");
  const auto want = read_tokens(fixture_dir(c.fixture) + "/greedy.npy");
  ASSERT_FALSE(want.empty());
  for (int n_draft = 1; n_draft <= rt::kMaxDraft; ++n_draft)
    for (bool wrong : {false, true}) {
      rt::Session s(*e);
      rt::Sampler greedy(rt::SamplingParams{0.0f});
      rt::SpecStream spec(s, greedy, n_draft);
      if (wrong)
        spec.set_draft_hook([&](std::vector<int32_t>& d, auto&) {
          for (int32_t& t : d) t = (t + 1) % int32_t(e->config().vocab_size);
        });
      spec.prefill(tokens);
      std::vector<int32_t> got;
      while (got.size() < want.size()) spec.next(&got, int64_t(want.size() - got.size()));
      EXPECT_EQ(got, want) << n_draft << " drafts per step" << (wrong ? ", every draft wrong" : "");
      EXPECT_GT(spec.stats().steps, 0u);
      if (wrong) EXPECT_EQ(spec.stats().accepted, 0u);
    }
}

TEST_P(Golden, F32MtpLogitsMatchReference) {
  const Case c = GetParam();
  // The fixture's files decide: a reference MTP file means the model must have an MTP layer that matches it; a
  // fixture without one has nothing to compare, which is reported as a skip, not as a pass.
  const std::string path = fixture_dir(c.fixture) + "/mtp_logits.npy";
  const bool has_ref = std::filesystem::exists(path);
  auto e = load(c, ops::Precision::F32);
  if (!has_ref) {
    EXPECT_FALSE(e->model().has_mtp()) << c.fixture << " has an MTP layer but no mtp_logits.npy to check it against";
    GTEST_SKIP() << c.fixture << " has no mtp_logits.npy: no MTP reference to compare";
  }
  ASSERT_TRUE(e->model().has_mtp()) << path << " exists but the model loaded without an MTP layer";
  const auto tokens = read_tokens(fixture_dir(c.fixture) + "/tokens.npy");
  const auto want = io::npy_read(path).to_f32();
  const int64_t n = int64_t(tokens.size()) - 1;
  ASSERT_EQ(int64_t(want.size()), n * e->config().vocab_size) << path;
  rt::Session s(*e);
  std::vector<float> hidden;
  s.prefill(tokens, true, &hidden);
  std::vector<float> mtp;
  e->model().forward_mtp(&s.cache(), std::vector<int32_t>(tokens.begin() + 1, tokens.end()), hidden.data(), n, &mtp);
  expect_rows_close(mtp, want, n, e->config().vocab_size, 1e-3, "row");
}

TEST_P(Golden, FastPrecisionCosineAndArgmax) {
  const Case c = GetParam();
  auto e = load(c, ops::Precision::Fast);
  const auto tokens = read_tokens(fixture_dir(c.fixture) + "/tokens.npy");
  const auto want = io::npy_read(fixture_dir(c.fixture) + "/logits.npy").to_f32();
  rt::Session s(*e);
  const auto got = s.prefill(tokens, true);
  // Sparse attention's choice is discontinuous: the README holds a bf16 path to this bar only at positions
  // t < index_topk, where every earlier position is chosen whatever the scores.
  const int64_t V = e->config().vocab_size, topk = e->config().index_topk;
  const int64_t rows = topk > 0 ? std::min<int64_t>(int64_t(tokens.size()), topk) : int64_t(tokens.size());
  expect_fast_agreement(std::vector<float>(got.begin(), got.begin() + rows * V),
                        std::vector<float>(want.begin(), want.begin() + rows * V), rows, V);
}

// DeepSeek-V3.2: the positions each prompt query attends to, per layer (index_sel.npy [layers, T, topk]) and in the
// MTP layer (mtp_index_sel.npy [T-1, topk]), identical to the reference's.
class GoldenSparse : public Golden {};

TEST_P(GoldenSparse, F32IndexSelectionsMatchReference) {
  const Case c = GetParam();
  const std::string dir = fixture_dir(c.fixture);
  auto e = load(c, ops::Precision::F32);
  const auto tokens = read_tokens(dir + "/tokens.npy");
  const int64_t T = int64_t(tokens.size()), L = e->config().num_hidden_layers, K = e->config().index_topk;
  const io::NpyArray want = io::npy_read(dir + "/index_sel.npy");
  ASSERT_EQ(want.shape, (std::vector<int64_t>{L, T, K}));
  const auto want_sel = want.to_i64();
  std::vector<model::Model::IndexRecord> log;
  e->model().record_index(&log);
  rt::Session s(*e);
  std::vector<float> hidden;
  s.prefill(tokens, true, &hidden);
  ASSERT_EQ(int64_t(log.size()), L);  // one chunk per layer
  for (int64_t l = 0; l < L; ++l) {
    const auto& r = log[size_t(l)];
    ASSERT_EQ(r.layer, l);
    ASSERT_EQ(r.rows, T);
    int wrong = 0;
    for (int64_t i = 0; i < T * K; ++i) wrong += r.sel[size_t(i)] != want_sel[size_t(l * T * K + i)];
    EXPECT_EQ(wrong, 0) << "layer " << l << ": " << wrong << " of " << T * K << " entries differ";
  }
  if (!e->model().has_mtp()) return;
  log.clear();
  std::vector<float> mtp;
  e->model().forward_mtp(&s.cache(), std::vector<int32_t>(tokens.begin() + 1, tokens.end()), hidden.data(), T - 1, &mtp);
  const io::NpyArray mw = io::npy_read(dir + "/mtp_index_sel.npy");
  ASSERT_EQ(mw.shape, (std::vector<int64_t>{T - 1, K}));
  ASSERT_EQ(log.size(), 1u);
  EXPECT_EQ(log[0].layer, L);
  const auto msel = mw.to_i64();
  int wrong = 0;
  for (int64_t i = 0; i < (T - 1) * K; ++i) wrong += log[0].sel[size_t(i)] != msel[size_t(i)];
  EXPECT_EQ(wrong, 0) << "MTP layer: " << wrong << " entries differ";
  e->model().record_index(nullptr);
}

// DeepSeek's FP8 indexer numerics (--indexer-numerics fp8): the *_fp8_indexer.npy files, selections identical.
TEST_P(GoldenSparse, F32WithFp8IndexerMatchesReference) {
  const Case c = GetParam();
  const std::string dir = fixture_dir(c.fixture);
  rt::EngineOptions o;
  o.backend = c.backend;
  o.precision = ops::Precision::F32;
  o.indexer_fp8 = true;
  auto e = rt::Engine::load(dir, o);
  const auto tokens = read_tokens(dir + "/tokens.npy");
  const int64_t T = int64_t(tokens.size()), L = e->config().num_hidden_layers, K = e->config().index_topk;
  const int64_t V = e->config().vocab_size;
  std::vector<model::Model::IndexRecord> log;
  e->model().record_index(&log);
  rt::Session s(*e);
  expect_rows_close(s.prefill(tokens, true), io::npy_read(dir + "/logits_fp8_indexer.npy").to_f32(), T, V, 1e-3,
                    "position");
  e->model().record_index(nullptr);
  const auto want = io::npy_read(dir + "/index_sel_fp8_indexer.npy").to_i64();
  ASSERT_EQ(int64_t(log.size()), L);
  int wrong = 0;
  for (int64_t l = 0; l < L; ++l)
    for (int64_t i = 0; i < T * K; ++i) wrong += log[size_t(l)].sel[size_t(i)] != want[size_t(l * T * K + i)];
  EXPECT_EQ(wrong, 0) << wrong << " entries differ";
  const auto greedy = read_tokens(dir + "/greedy_fp8_indexer.npy");
  rt::Session g(*e);
  EXPECT_EQ(greedy_continuation(g, tokens, greedy.size()), greedy);
}

auto case_name = [](const auto& info) {
  std::string n = info.param.fixture + "_" + info.param.backend;
  for (char& ch : n) if (ch == '-') ch = '_';
  return n;
};
INSTANTIATE_TEST_SUITE_P(Fixtures, Golden, ::testing::ValuesIn(cases()), case_name);
std::vector<Case> sparse_cases() {
  std::vector<Case> v;
  for (const Case& c : cases())
    if (c.fixture.find("v32") != std::string::npos) v.push_back(c);
  return v;
}
INSTANTIATE_TEST_SUITE_P(Fixtures, GoldenSparse, ::testing::ValuesIn(sparse_cases()), case_name);

}  // namespace
}  // namespace ds::test
