// SPDX-License-Identifier: MIT
// The dense distill architectures (qwen2: R1-Distill-Qwen, llama: R1-Distill-Llama, qwen3: R1-0528-Qwen3) against
// their fp32 references (tests/fixtures/models/tiny-{qwen2,llama,qwen3}: numpy forwards of transformers' modeling
// code, cross-checked with llama.cpp). Tolerances from the fixtures' README: fp32 logits within 1e-3, greedy
// identical; fast precision cosine >= 0.999 per row.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <functional>
#include <fstream>
#include <nlohmann/json.hpp>

#include "expect_error.h"
#include "golden/golden_checks.h"
#include "io/config.h"
#include "model/rope.h"
#include "runtime/engine.h"
#include "runtime/gguf_convert.h"
#include "runtime/session.h"

namespace ds::test {
namespace {

using json = nlohmann::json;

struct Case {
  std::string fixture;
  std::string backend;
};
void PrintTo(const Case& c, std::ostream* os) { *os << c.fixture << " on " << c.backend; }

class Dense : public ::testing::TestWithParam<Case> {};

std::unique_ptr<rt::Engine> load(const Case& c, ops::Precision p) {
  rt::EngineOptions o;
  o.backend = c.backend;
  o.precision = p;
  return rt::Engine::load(fixture_dir(c.fixture), o);
}

TEST_P(Dense, F32LogitsMatchReference) {
  const Case c = GetParam();
  auto e = load(c, ops::Precision::F32);
  const auto tokens = read_tokens(fixture_dir(c.fixture) + "/tokens.npy");
  const auto want = io::npy_read(fixture_dir(c.fixture) + "/logits.npy").to_f32();
  rt::Session s(*e);
  const auto got = s.prefill(tokens, true);
  expect_rows_close(got, want, int64_t(tokens.size()), e->config().vocab_size, 1e-3, "position");
}

TEST_P(Dense, F32GreedyMatchesReference) {
  const Case c = GetParam();
  auto e = load(c, ops::Precision::F32);
  const auto tokens = read_tokens(fixture_dir(c.fixture) + "/tokens.npy");
  const auto want = read_tokens(fixture_dir(c.fixture) + "/greedy.npy");
  ASSERT_FALSE(want.empty());
  rt::Session s(*e);
  EXPECT_EQ(greedy_continuation(s, tokens, want.size()), want);
}

TEST_P(Dense, FastAgreesWithReference) {
  const Case c = GetParam();
  auto e = load(c, ops::Precision::Fast);
  const auto tokens = read_tokens(fixture_dir(c.fixture) + "/tokens.npy");
  const auto want = io::npy_read(fixture_dir(c.fixture) + "/logits.npy").to_f32();
  rt::Session s(*e);
  expect_fast_agreement(s.prefill(tokens, true), want, int64_t(tokens.size()), e->config().vocab_size);
}

// Token-by-token decode gives the prefill's logits at every position (1e-4), in both precisions.
TEST_P(Dense, DecodeEqualsPrefill) {
  const Case c = GetParam();
  for (ops::Precision p : {ops::Precision::F32, ops::Precision::Fast}) {
    auto e = load(c, p);
    const int64_t V = e->config().vocab_size;
    const auto tokens = read_tokens(fixture_dir(c.fixture) + "/tokens.npy");
    rt::Session a(*e), b(*e);
    const auto all = a.prefill(tokens, true);
    for (size_t i = 0; i < tokens.size(); ++i) {
      const auto row = b.decode(tokens[i]);
      EXPECT_LE(max_abs_diff(row.data(), all.data() + int64_t(i) * V, size_t(V)), 1e-4) << "position " << i;
    }
  }
}

// One batch holding three sequences (different lengths, one continuing a cached prefix) gives each the logits it
// gets alone.
TEST_P(Dense, MixedBatchEqualsEachAlone) {
  const Case c = GetParam();
  auto e = load(c, ops::Precision::F32);
  model::Model& m = e->model();
  const int64_t V = e->config().vocab_size;
  const auto tokens = read_tokens(fixture_dir(c.fixture) + "/tokens.npy");
  const std::vector<std::vector<int32_t>> prompts = {
      std::vector<int32_t>(tokens.begin(), tokens.begin() + 17), std::vector<int32_t>(tokens.begin() + 3, tokens.end()),
      std::vector<int32_t>(tokens.begin() + 5, tokens.begin() + 6)};
  std::vector<std::vector<float>> alone;
  for (const auto& p : prompts) {
    auto cache = m.new_cache(64);
    model::Batch b;
    b.tokens = p;
    b.seqs.push_back({cache.get(), int64_t(p.size()), true, false});
    model::ForwardOutput out;
    m.forward(b, &out);
    alone.push_back(out.logits);
  }
  std::vector<std::unique_ptr<model::KvCache>> caches;
  model::Batch b;
  for (const auto& p : prompts) {
    caches.push_back(m.new_cache(64));
    b.tokens.insert(b.tokens.end(), p.begin(), p.end());
    b.seqs.push_back({caches.back().get(), int64_t(p.size()), true, false});
  }
  model::ForwardOutput out;
  m.forward(b, &out);
  int64_t row = 0;
  for (size_t j = 0; j < prompts.size(); ++j)
    for (size_t i = 0; i < prompts[j].size(); ++i, ++row)
      EXPECT_LE(max_abs_diff(out.logits.data() + row * V, alone[j].data() + int64_t(i) * V, size_t(V)), 1e-5)
          << "sequence " << j << " row " << i;
}

// The RoPE frequencies (llama3 / YaRN / plain) equal the reference's table in meta.json.
TEST_P(Dense, RopeTableMatchesReference) {
  const Case c = GetParam();
  std::ifstream f(fixture_dir(c.fixture) + "/meta.json");
  const json meta = json::parse(f);
  const auto cfg = io::load_config(fixture_dir(c.fixture) + "/config.json");
  const auto t = model::make_rope_tables(cfg);
  const auto& want = meta["rope"]["inv_freq"];
  ASSERT_EQ(want.size(), t.inv_freq.size());
  for (size_t i = 0; i < want.size(); ++i)
    EXPECT_NEAR(t.inv_freq[i], want[i].get<double>(), 1e-6 * std::fabs(want[i].get<double>()) + 1e-12) << i;
  EXPECT_NEAR(t.attn_factor, meta["rope"]["attention_scaling"].get<double>(), 1e-6);
}

std::vector<Case> cases() {
  std::vector<Case> v;
  for (const char* f : {"tiny-qwen2", "tiny-llama", "tiny-qwen3"})
    for (const char* b : {"cpu", "ref"}) v.push_back({f, b});
  return v;
}

INSTANTIATE_TEST_SUITE_P(Fixtures, Dense, ::testing::ValuesIn(cases()), [](const auto& info) {
  std::string n = info.param.fixture + "_" + info.param.backend;
  for (char& ch : n) if (ch == '-') ch = '_';
  return n;
});

json fixture_config(const std::string& f) {
  std::ifstream in(fixture_dir(f) + "/config.json");
  return json::parse(in);
}

// R1-0528-Qwen3-8B's config carries rope_scaling.attn_factor; it multiplies the YaRN magnitude (as vLLM reads it).
TEST(DenseConfig, AttnFactorKeyScalesYarnMagnitude) {
  json j = fixture_config("tiny-qwen3");
  const auto without = model::make_rope_tables(io::parse_config(j, "tiny-qwen3"));
  const double mscale = 0.1 * std::log(4.0) + 1.0;
  EXPECT_NEAR(without.attn_factor, mscale, 1e-6);
  j["rope_scaling"]["attn_factor"] = 1.0 / mscale;
  const auto with = model::make_rope_tables(io::parse_config(j, "tiny-qwen3"));
  EXPECT_NEAR(with.attn_factor, 1.0, 1e-6);
  EXPECT_EQ(with.inv_freq, without.inv_freq);
}

// ... and moves the logits away from the reference (which leaves the key out), so it is really applied.
TEST(DenseConfig, AttnFactorKeyChangesLogits) {
  const std::string dir = ::testing::TempDir() + "/qwen3_attn_factor";
  std::filesystem::create_directories(dir);
  json j = fixture_config("tiny-qwen3");
  j["rope_scaling"]["attn_factor"] = 1.0 / (0.1 * std::log(4.0) + 1.0);
  std::ofstream(dir + "/config.json") << j.dump();
  std::filesystem::copy_file(fixture_dir("tiny-qwen3") + "/model.safetensors", dir + "/model.safetensors",
                             std::filesystem::copy_options::overwrite_existing);
  rt::EngineOptions o;
  o.precision = ops::Precision::F32;
  auto e = rt::Engine::load(dir, o);
  const auto tokens = read_tokens(fixture_dir("tiny-qwen3") + "/tokens.npy");
  const auto want = io::npy_read(fixture_dir("tiny-qwen3") + "/logits.npy").to_f32();
  rt::Session s(*e);
  const auto got = s.prefill(tokens, true);
  EXPECT_GT(max_abs_diff(got.data(), want.data(), got.size()), 1e-2);

  // Its GGUF (the converter writes the key as rope.scaling.yarn_attn_factor) computes the same as the checkpoint.
  rt::ConvertOptions co;
  co.model = dir;
  co.out = dir + "/F32.gguf";
  co.type = "F32";
  rt::convert_to_gguf(co);
  auto g = rt::Engine::load(co.out, o);
  EXPECT_NEAR(g->config().rope_scaling.attn_factor, j["rope_scaling"]["attn_factor"].get<double>(), 1e-6);
  rt::Session gs(*g);
  EXPECT_LE(max_abs_diff(gs.prefill(tokens, true).data(), got.data(), got.size()), 1e-4);
}

TEST(DenseConfig, MalformedConfigsAreRefused) {
  struct Bad {
    std::string fixture;
    std::function<void(json&)> edit;
    std::string message;
  };
  const std::vector<Bad> bad = {
      {"tiny-qwen2", [](json& j) { j["num_key_value_heads"] = 3; }, "not a multiple of num_key_value_heads"},
      {"tiny-qwen2", [](json& j) { j["num_key_value_heads"] = 0; }, "num_key_value_heads"},
      {"tiny-llama", [](json& j) { j["head_dim"] = 15; }, "head_dim = 15 must be even"},
      {"tiny-llama", [](json& j) { j["rope_scaling"]["rope_type"] = "dynamic"; }, "rope_scaling type 'dynamic'"},
      {"tiny-llama", [](json& j) { j["rope_scaling"]["high_freq_factor"] = 0.5; }, "high_freq_factor"},
      {"tiny-llama", [](json& j) { j["mlp_bias"] = true; }, "mlp_bias"},
      {"tiny-qwen3", [](json& j) { j["use_sliding_window"] = true; }, "use_sliding_window"},
      {"tiny-qwen3", [](json& j) { j["hidden_act"] = "gelu"; }, "hidden_act"},
      {"tiny-qwen3", [](json& j) { j["model_type"] = "mistral"; }, "model_type 'mistral'"},
  };
  for (const Bad& b : bad) {
    json j = fixture_config(b.fixture);
    b.edit(j);
    EXPECT_TRUE(throws_with([&] { io::parse_config(j, "config.json"); }, {"config.json", b.message})) << b.fixture;
  }
}

// Qwen3 without head_dim takes the class default 128 (not hidden / heads); then the checkpoint's shapes disagree.
TEST(DenseConfig, Qwen3HeadDimDefaultIs128) {
  json j = fixture_config("tiny-qwen3");
  j.erase("head_dim");
  EXPECT_EQ(io::parse_config(j, "config.json").head_dim, 128);
  j = fixture_config("tiny-qwen2");
  EXPECT_EQ(io::parse_config(j, "config.json").head_dim, 16);
}

}  // namespace
}  // namespace ds::test
