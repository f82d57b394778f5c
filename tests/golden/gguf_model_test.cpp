// SPDX-License-Identifier: MIT
// DeepSeek GGUF files (../shared/fixtures/gguf, written by llama.cpp's converters and llama-quantize) through the
// engine: the config read from the GGUF metadata equals the one its Hugging Face config.json gives; an F32 file's
// logits match the fp32 reference computed from it (gguf_reference.py: exact dequantisation + the HF forward)
// within the fixtures' 1e-3 and its greedy continuation is identical; quantised files are refused with a message
// naming the tensor and its type (their kernels are not written yet).
#include <gtest/gtest.h>

#include <filesystem>

#include "base/error.h"
#include "golden/fixture_util.h"
#include "golden/golden_checks.h"
#include "io/config.h"
#include "io/gguf.h"
#include "io/npy.h"
#include "runtime/engine.h"
#include "runtime/session.h"

namespace ds::test {
namespace {

const std::string kShared = std::string(DS_SOURCE_DIR) + "/../shared/fixtures/";

class GgufModelTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!std::filesystem::exists(kShared + "gguf")) GTEST_SKIP() << kShared << "gguf is missing (../shared beside the repository)";
  }
};

TEST_F(GgufModelTest, ConfigFromMetadataEqualsConfigJson) {
  for (const char* m : {"tiny-v3", "tiny-gguf-v2l"}) {
    SCOPED_TRACE(m);
    const std::string dir = kShared + "gguf/" + m + "/";
    const std::string file = std::filesystem::exists(dir + "F32.gguf") ? dir + "F32.gguf" : dir + "Q8_0.gguf";
    const io::ModelConfig g = io::config_from_gguf(*io::GgufModel::open(file));
    const io::ModelConfig h = io::load_config(kShared + "models/" + m + "/config.json");
    EXPECT_EQ(g.vocab_size, h.vocab_size);
    EXPECT_EQ(g.hidden_size, h.hidden_size);
    EXPECT_EQ(g.intermediate_size, h.intermediate_size);
    EXPECT_EQ(g.moe_intermediate_size, h.moe_intermediate_size);
    EXPECT_EQ(g.num_hidden_layers, h.num_hidden_layers);
    EXPECT_EQ(g.num_attention_heads, h.num_attention_heads);
    EXPECT_EQ(g.q_lora_rank, h.q_lora_rank);
    EXPECT_EQ(g.kv_lora_rank, h.kv_lora_rank);
    EXPECT_EQ(g.qk_nope_head_dim, h.qk_nope_head_dim);
    EXPECT_EQ(g.qk_rope_head_dim, h.qk_rope_head_dim);
    EXPECT_EQ(g.v_head_dim, h.v_head_dim);
    EXPECT_EQ(g.n_routed_experts, h.n_routed_experts);
    EXPECT_EQ(g.n_shared_experts, h.n_shared_experts);
    EXPECT_EQ(g.num_experts_per_tok, h.num_experts_per_tok);
    EXPECT_EQ(g.n_group, h.n_group);
    EXPECT_EQ(g.topk_group, h.topk_group);
    EXPECT_EQ(g.first_k_dense_replace, h.first_k_dense_replace);
    EXPECT_FLOAT_EQ(float(g.routed_scaling_factor), float(h.routed_scaling_factor));
    EXPECT_EQ(g.norm_topk_prob, h.norm_topk_prob);
    EXPECT_EQ(g.scoring_func, h.scoring_func);
    EXPECT_EQ(g.topk_method, h.topk_method);
    EXPECT_FLOAT_EQ(float(g.rms_norm_eps), float(h.rms_norm_eps));
    EXPECT_FLOAT_EQ(float(g.rope_theta), float(h.rope_theta));
    EXPECT_EQ(g.rope_scaling.yarn, h.rope_scaling.yarn);
    if (h.rope_scaling.yarn) {
      EXPECT_FLOAT_EQ(float(g.rope_scaling.factor), float(h.rope_scaling.factor));
      EXPECT_EQ(g.rope_scaling.original_max_position_embeddings, h.rope_scaling.original_max_position_embeddings);
      EXPECT_FLOAT_EQ(float(g.rope_scaling.mscale_all_dim), float(h.rope_scaling.mscale_all_dim));
    }
    EXPECT_EQ(g.tie_word_embeddings, h.tie_word_embeddings);
  }
}

TEST_F(GgufModelTest, F32FileMatchesItsReference) {
  const std::string dir = kShared + "gguf/tiny-v3/";
  rt::EngineOptions o;
  o.threads = 2;
  o.precision = ops::Precision::F32;
  for (const char* backend : {"cpu", "ref"}) {
    o.backend = backend;
    auto e = rt::Engine::load(dir + "F32.gguf", o);
    const auto tokens = read_tokens(dir + "tokens.npy");
    const auto want = io::npy_read(dir + "F32.ref_logits.npy").to_f32();
    rt::Session s(*e);
    const auto got = s.prefill(tokens, true);
    ASSERT_EQ(got.size(), want.size());
    double d = 0;
    for (size_t i = 0; i < got.size(); ++i) d = std::max(d, double(std::fabs(got[i] - want[i])));
    EXPECT_LE(d, 1e-3) << backend;
    rt::Session g(*e);
    const auto greedy = read_tokens(dir + "F32.ref_greedy.npy");
    EXPECT_EQ(greedy_continuation(g, tokens, greedy.size()), greedy) << backend;
  }
}

TEST_F(GgufModelTest, QuantisedFilesAreRefusedByName) {
  rt::EngineOptions o;
  try {
    rt::Engine::load(kShared + "gguf/tiny-v3/Q4_K_M.gguf", o);
    FAIL() << "a Q4_K_M file loaded";
  } catch (const ds::Error& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("Q4_K_M.gguf"), std::string::npos) << m;
    EXPECT_NE(m.find("quantised GGUF tensor types are not supported yet"), std::string::npos) << m;
  }
  try {
    rt::Engine::load(kShared + "gguf/tiny-qwen2/F32.gguf", o);
    FAIL() << "a qwen2 file loaded";
  } catch (const ds::Error& e) {
    EXPECT_NE(std::string(e.what()).find("architecture 'qwen2' is not supported"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace ds::test
