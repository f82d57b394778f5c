// SPDX-License-Identifier: MIT
// The dense distill architectures as GGUF files: qwen2 and qwen3 files written by llama.cpp's converter and
// llama-quantize (../shared/fixtures/gguf, reference: exact dequantisation + the fp32 forward), and a llama file laid
// out as llama.cpp's LlamaModel converter writes it (q/k rows permuted for adjacent-pair RoPE, llama3 scaling baked
// into rope_freqs.weight), built here from the tiny-llama checkpoint.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>

#include "base/dtype.h"
#include "base/error.h"
#include "golden/fixture_util.h"
#include "golden/golden_checks.h"
#include "io/config.h"
#include "io/gguf.h"
#include "io/gguf_writer.h"
#include "io/npy.h"
#include "io/safetensors.h"
#include "runtime/engine.h"
#include "runtime/session.h"

namespace ds::test {
namespace {

const std::string kShared = std::string(DS_SOURCE_DIR) + "/../shared/fixtures/";

class GgufDense : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!std::filesystem::exists(kShared + "gguf")) GTEST_SKIP() << kShared << "gguf is missing (../shared beside the repository)";
  }
};

TEST_F(GgufDense, ConfigFromMetadataEqualsConfigJson) {
  for (const char* m : {"tiny-qwen2", "tiny-gguf-qwen3"}) {
    SCOPED_TRACE(m);
    const io::ModelConfig g = io::config_from_gguf(*io::GgufModel::open(kShared + "gguf/" + m + "/Q8_0.gguf"));
    const io::ModelConfig h = io::load_config(kShared + "models/" + m + "/config.json");
    EXPECT_EQ(g.model_type, h.model_type);
    EXPECT_EQ(g.vocab_size, h.vocab_size);
    EXPECT_EQ(g.hidden_size, h.hidden_size);
    EXPECT_EQ(g.intermediate_size, h.intermediate_size);
    EXPECT_EQ(g.num_hidden_layers, h.num_hidden_layers);
    EXPECT_EQ(g.num_attention_heads, h.num_attention_heads);
    EXPECT_EQ(g.num_key_value_heads, h.num_key_value_heads);
    EXPECT_EQ(g.head_dim, h.head_dim);
    EXPECT_EQ(g.qkv_bias, h.qkv_bias);
    EXPECT_EQ(g.o_bias, h.o_bias);
    EXPECT_EQ(g.qk_norm, h.qk_norm);
    EXPECT_EQ(g.tie_word_embeddings, h.tie_word_embeddings);
    EXPECT_FALSE(g.rope_interleaved);
    EXPECT_FLOAT_EQ(float(g.rms_norm_eps), float(h.rms_norm_eps));
    EXPECT_FLOAT_EQ(float(g.rope_theta), float(h.rope_theta));
    EXPECT_EQ(g.rope_scaling.type, h.rope_scaling.type);
    EXPECT_FLOAT_EQ(float(g.rope_scaling.factor), float(h.rope_scaling.factor));
    if (h.rope_scaling.yarn())
      EXPECT_EQ(g.rope_scaling.original_max_position_embeddings, h.rope_scaling.original_max_position_embeddings);
  }
}

// Every file, computed in fp32 from its blocks: logits within 1e-3 of the reference, greedy identical.
TEST_F(GgufDense, LogitsAndGreedyMatchReference) {
  const std::vector<std::pair<std::string, std::vector<std::string>>> files = {
      {"tiny-qwen2", {"F32", "Q8_0", "Q6_K", "Q4_K_M"}},
      {"tiny-gguf-qwen3", {"F32", "Q8_0", "Q6_K", "Q5_K_M", "Q4_K_M", "Q3_K_M", "Q2_K", "IQ4_XS"}}};
  for (const auto& [model, types] : files) {
    const std::string dir = kShared + "gguf/" + model + "/";
    const auto tokens = read_tokens(dir + "tokens.npy");
    for (const std::string& t : types) {
      for (const char* backend : {"cpu", "ref"}) {
        SCOPED_TRACE(model + " " + t + " on " + backend);
        rt::EngineOptions o;
        o.backend = backend;
        o.precision = ops::Precision::F32;
        auto e = rt::Engine::load(dir + t + ".gguf", o);
        const auto want = io::npy_read(dir + t + ".ref_logits.npy").to_f32();
        rt::Session s(*e);
        expect_rows_close(s.prefill(tokens, true), want, int64_t(tokens.size()), e->config().vocab_size, 1e-3,
                          "position");
        const auto greedy = read_tokens(dir + t + ".ref_greedy.npy");
        rt::Session g(*e);
        EXPECT_EQ(greedy_continuation(g, tokens, greedy.size()), greedy);
      }
    }
  }
}

// tiny-llama as llama.cpp's converter writes it (F32): rows of each q/k head go from [first half | second half] to
// interleaved pairs, and the llama3 rule becomes per-frequency divisors. The engine must give the checkpoint's
// reference logits from that file.
TEST(GgufDenseLlama, PermutedLlamaFileMatchesReference) {
  const std::string src = fixture_dir("tiny-llama");
  const io::ModelConfig c = io::load_config(src + "/config.json");
  auto st = io::SafetensorsFile::open(src + "/model.safetensors");
  auto f32 = [&](const std::string& name) {
    const io::TensorInfo* t = st->find(name);
    EXPECT_NE(t, nullptr) << name;
    std::vector<float> v(size_t(t->numel()));
    const uint16_t* h = reinterpret_cast<const uint16_t*>(t->data);
    for (size_t i = 0; i < v.size(); ++i) v[i] = bf16_to_f32(h[i]);
    return std::pair<std::vector<float>, std::vector<int64_t>>{v, t->shape};
  };
  auto permute = [](const std::vector<float>& w, int64_t rows, int64_t cols, int64_t heads) {
    std::vector<float> out(w.size());
    const int64_t hd = rows / heads, half = hd / 2;
    for (int64_t h = 0; h < heads; ++h)
      for (int64_t j = 0; j < half; ++j)
        for (int64_t k = 0; k < 2; ++k)  // out row 2j + k of the head = in row j + k * half
          std::copy_n(w.begin() + (h * hd + j + k * half) * cols, cols, out.begin() + (h * hd + 2 * j + k) * cols);
    return out;
  };
  // llama.cpp's rope factors: 1 (high frequencies), factor (low), 1 / ((1 - s) / factor + s) between.
  std::vector<float> rope_freqs;
  const auto& rs = c.rope_scaling;
  for (int64_t i = 0; i < c.head_dim / 2; ++i) {
    const float f = 1.0f / std::pow(float(c.rope_theta), float(2 * i) / float(c.head_dim));
    const double wl = 2 * M_PI / double(f), orig = double(rs.original_max_position_embeddings);
    if (wl < orig / rs.high_freq_factor) rope_freqs.push_back(1.0f);
    else if (wl > orig / rs.low_freq_factor) rope_freqs.push_back(float(rs.factor));
    else {
      const double s = (orig / wl - rs.low_freq_factor) / (rs.high_freq_factor - rs.low_freq_factor);
      rope_freqs.push_back(float(1.0 / ((1.0 - s) / rs.factor + s)));
    }
  }

  const std::string path = ::testing::TempDir() + "/tiny-llama-f32.gguf";
  io::GgufWriter w(path);
  const std::string a = "llama.";
  w.set_string("general.architecture", "llama");
  w.set_u32(a + "context_length", uint32_t(c.max_position_embeddings));
  w.set_u32(a + "embedding_length", uint32_t(c.hidden_size));
  w.set_u32(a + "block_count", uint32_t(c.num_hidden_layers));
  w.set_u32(a + "feed_forward_length", uint32_t(c.intermediate_size));
  w.set_u32(a + "attention.head_count", uint32_t(c.num_attention_heads));
  w.set_u32(a + "attention.head_count_kv", uint32_t(c.num_key_value_heads));
  w.set_f32(a + "attention.layer_norm_rms_epsilon", float(c.rms_norm_eps));
  w.set_f32(a + "rope.freq_base", float(c.rope_theta));
  w.set_u32(a + "rope.dimension_count", uint32_t(c.head_dim));
  w.set_u32(a + "attention.key_length", uint32_t(c.head_dim));
  w.set_u32(a + "attention.value_length", uint32_t(c.head_dim));
  w.set_u32(a + "vocab_size", uint32_t(c.vocab_size));
  std::vector<std::pair<std::string, std::vector<float>>> data;
  auto add = [&](const std::string& gg, std::vector<float> v, const std::vector<int64_t>& shape) {
    w.add_tensor(gg, std::vector<int64_t>(shape.rbegin(), shape.rend()), 0);
    data.emplace_back(gg, std::move(v));
  };
  auto copy = [&](const std::string& gg, const std::string& hf) {
    auto [v, shape] = f32(hf);
    add(gg, std::move(v), shape);
  };
  copy("token_embd.weight", "model.embed_tokens.weight");
  copy("output_norm.weight", "model.norm.weight");
  copy("output.weight", "lm_head.weight");
  add("rope_freqs.weight", rope_freqs, {int64_t(rope_freqs.size())});
  for (int64_t l = 0; l < c.num_hidden_layers; ++l) {
    const std::string b = "blk." + std::to_string(l) + ".", p = "model.layers." + std::to_string(l) + ".";
    copy(b + "attn_norm.weight", p + "input_layernorm.weight");
    for (const auto& [x, heads] : {std::pair<std::string, int64_t>{"q", c.num_attention_heads}, {"k", c.num_key_value_heads}}) {
      auto [v, shape] = f32(p + "self_attn." + x + "_proj.weight");
      add(b + "attn_" + x + ".weight", permute(v, shape[0], shape[1], heads), shape);
    }
    copy(b + "attn_v.weight", p + "self_attn.v_proj.weight");
    copy(b + "attn_output.weight", p + "self_attn.o_proj.weight");
    copy(b + "ffn_norm.weight", p + "post_attention_layernorm.weight");
    for (const char* m : {"gate", "up", "down"}) copy(b + "ffn_" + m + ".weight", p + "mlp." + m + "_proj.weight");
  }
  w.write_header();
  for (const auto& [name, v] : data) w.write_data(v.data(), v.size() * sizeof(float));
  w.finish();

  const io::ModelConfig g = io::config_from_gguf(*io::GgufModel::open(path));
  EXPECT_TRUE(g.rope_interleaved);
  EXPECT_EQ(g.rope_scaling.freq_factors, rope_freqs);
  const auto tokens = read_tokens(src + "/tokens.npy");
  const auto want = io::npy_read(src + "/logits.npy").to_f32();
  const auto greedy = read_tokens(src + "/greedy.npy");
  for (const char* backend : {"cpu", "ref"}) {
    SCOPED_TRACE(backend);
    rt::EngineOptions o;
    o.backend = backend;
    o.precision = ops::Precision::F32;
    auto e = rt::Engine::load(path, o);
    rt::Session s(*e);
    expect_rows_close(s.prefill(tokens, true), want, int64_t(tokens.size()), c.vocab_size, 1e-3, "position");
    rt::Session gs(*e);
    EXPECT_EQ(greedy_continuation(gs, tokens, greedy.size()), greedy);
  }
}

TEST(GgufDenseLlama, UnsupportedArchitectureIsRefusedByName) {
  const std::string path = ::testing::TempDir() + "/gemma3.gguf";
  io::GgufWriter w(path);
  w.set_string("general.architecture", "gemma3");
  w.write_header();
  w.finish();
  rt::EngineOptions o;
  try {
    rt::Engine::load(path, o);
    FAIL() << "a gemma3 file loaded";
  } catch (const ds::Error& e) {
    EXPECT_NE(std::string(e.what()).find("architecture 'gemma3' is not supported"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace ds::test
