// SPDX-License-Identifier: MIT
// `deepseek quantize` end to end (runtime/gguf_convert.h): Hugging Face fixtures -> GGUF -> loaded back by the
// engine. DeepSeek (deepseek2) and the dense distills (qwen2, llama with permuted q/k and rope_freqs, qwen3).
//  - F32 and BF16 files (bf16 checkpoints convert exactly) give the fixture's logits.npy within 1e-3 and its greedy
//    continuation; an FP8 checkpoint's F32 file too (FP8 dequantised exactly);
//  - quantised files (Q8_0, Q4_K_M) compute the same logits on the cpu kernels as on the `ref` backend (Precision
//    F32), and as the fp32 reference forward on llama-quantize's file of the same type where ../shared has it; their
//    metadata gives back the config;
//  - tiny-v3's F32 file holds the tensors of llama.cpp's F32 conversion (../shared/fixtures/gguf/tiny-v3/F32.gguf):
//    same names, shapes, types and bytes; the quantised files hold, tensor by tensor, the bytes llama-quantize wrote
//    for the same model (../shared/fixtures/gguf/*/Q*.gguf, made from F32 conversions without an importance matrix);
//  - llama.cpp's per-tensor type rules (dense ones and the 70B rule too); the dense metadata keys and llama's
//    rope_freqs as the converter writes them; random weights; the vocabulary written from a real tokenizer.json
//    equals the converter recipe the tokenizer tests check against gguf-py; tokenizer.ggml.pre recognised
//    (deepseek-r1-qwen); refusing to overwrite the input.
#include <gtest/gtest.h>

#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "base/error.h"
#include "expect_error.h"
#include "golden/golden_checks.h"
#include "io/config.h"
#include "io/gguf.h"
#include "io/gguf_meta.h"
#include "io/gguf_writer.h"
#include "io/npy.h"
#include "io/safetensors.h"
#include "model/gguf_export.h"
#include "runtime/engine.h"
#include "runtime/gguf_convert.h"
#include "runtime/session.h"
#include "tokenizer/gguf_vocab.h"
#include "tokenizer/gguf_vocab_writer.h"

namespace ds::test {
namespace {

namespace fs = std::filesystem;

const std::string kShared = std::string(DS_SOURCE_DIR) + "/../shared/fixtures/";
const std::string kBin = std::string(DS_BINARY_DIR) + "/apps/deepseek/deepseek";

// A scratch folder per test process (ctest runs the cases in parallel), removed at exit.
const fs::path& scratch() {
  static const struct Dir {
    fs::path p;
    Dir() {
      p = fs::temp_directory_path() / ("ds_quantize_test_" + std::to_string(::getpid()));
      fs::remove_all(p);
      fs::create_directories(p);
    }
    ~Dir() {
      std::error_code ec;
      fs::remove_all(p, ec);
    }
  } dir;
  return dir.p;
}

// A model folder: the repository's fixtures, or the shared K-quant model (empty when ../shared is missing).
std::string model_dir(const std::string& m) {
  if (fs::exists(fixture_dir(m) + "/config.json")) return fixture_dir(m);
  const std::string s = kShared + "models/" + m;
  return fs::exists(s + "/config.json") ? s : "";
}

// Converts `model` to `type` once per process; returns the file.
std::string convert(const std::string& model, const std::string& type) {
  const std::string out = (scratch() / (model + "-" + type + ".gguf")).string();
  if (!fs::exists(out)) {
    rt::ConvertOptions o;
    o.model = model_dir(model);
    o.out = out;
    o.type = type;
    o.threads = 2;
    rt::convert_to_gguf(o);
  }
  return out;
}

std::unique_ptr<rt::Engine> load(const std::string& path, const char* backend) {
  rt::EngineOptions o;
  o.backend = backend;
  o.threads = 2;
  o.precision = ops::Precision::F32;
  return rt::Engine::load(path, o);
}

std::vector<float> prefill(rt::Engine& e, const std::vector<int32_t>& tokens) {
  rt::Session s(e);
  return s.prefill(tokens, true);
}

void expect_same_config(const io::ModelConfig& g, const io::ModelConfig& h);

TEST(Quantize, F32AndBf16FilesMatchTheModelsReference) {
  struct Case {
    const char* model;
    const char* type;
  };
  // tiny-v3-fp8: FP8 weights dequantised exactly into the F32 file (a BF16 file of them would round).
  const Case cases[] = {{"tiny-v3", "F32"},         {"tiny-v3", "BF16"},         {"tiny-v2-lite", "BF16"},
                        {"tiny-v3-fp8", "F32"},     {"tiny-gguf-v2l", "F32"},    {"tiny-gguf-v2l", "BF16"},
                        {"tiny-qwen2", "F32"},      {"tiny-qwen2", "BF16"},      {"tiny-llama", "F32"},
                        {"tiny-llama", "BF16"},     {"tiny-qwen3", "F32"},       {"tiny-qwen3", "BF16"},
                        {"tiny-gguf-qwen3", "F32"}, {"tiny-gguf-qwen3", "BF16"}, {"tiny-v32", "F32"},
                        {"tiny-v32-fp8", "F32"}};
  for (const Case& c : cases) {
    SCOPED_TRACE(std::string(c.model) + " " + c.type);
    const std::string dir = model_dir(c.model);
    if (dir.empty()) {
      std::printf("skipped %s: ../shared/fixtures/models/%s is missing\n", c.model, c.model);
      continue;
    }
    const std::string file = convert(c.model, c.type);
    if (std::string(c.model).find("v32") != std::string::npos)  // deepseek32: the indexer's keys and names
      expect_same_config(io::config_from_gguf(*io::GgufModel::open(file)), io::load_config(dir + "/config.json"));
    auto e = load(file, "cpu");
    EXPECT_FALSE(e->model().has_mtp());
    const auto tokens = read_tokens(dir + "/tokens.npy");
    const auto want = io::npy_read(dir + "/logits.npy").to_f32();
    const int64_t V = e->config().vocab_size;
    expect_rows_close(prefill(*e, tokens), want, int64_t(tokens.size()), V, 1e-3, "logits row");
    const auto greedy = read_tokens(dir + "/greedy.npy");
    rt::Session g(*e);
    EXPECT_EQ(greedy_continuation(g, tokens, greedy.size()), greedy);
  }
}

// The config a converted file's metadata gives back: the checkpoint's (`g` from the GGUF, `h` from config.json).
void expect_same_config(const io::ModelConfig& g, const io::ModelConfig& h) {
  EXPECT_EQ(g.num_hidden_layers, h.num_hidden_layers);
  EXPECT_EQ(g.vocab_size, h.vocab_size);
  EXPECT_EQ(g.hidden_size, h.hidden_size);
  EXPECT_EQ(g.intermediate_size, h.intermediate_size);
  EXPECT_EQ(g.num_attention_heads, h.num_attention_heads);
  EXPECT_EQ(g.max_position_embeddings, h.max_position_embeddings);
  EXPECT_EQ(g.tie_word_embeddings, h.tie_word_embeddings);
  EXPECT_FLOAT_EQ(float(g.rms_norm_eps), float(h.rms_norm_eps));
  EXPECT_FLOAT_EQ(float(g.rope_theta), float(h.rope_theta));
  if (!h.mla()) {
    EXPECT_EQ(g.model_type, h.model_type);
    EXPECT_EQ(g.num_key_value_heads, h.num_key_value_heads);
    EXPECT_EQ(g.head_dim, h.head_dim);
    EXPECT_EQ(g.qkv_bias, h.qkv_bias);
    EXPECT_EQ(g.o_bias, h.o_bias);
    EXPECT_EQ(g.qk_norm, h.qk_norm);
    // Llama files hold q/k permuted for adjacent-pair RoPE, and llama3 scaling as per-frequency divisors.
    EXPECT_EQ(g.rope_interleaved, h.model_type == "llama");
    if (h.rope_scaling.type == io::RopeType::Llama3) {
      EXPECT_EQ(g.rope_scaling.freq_factors, model::llama3_rope_freqs(h));
    } else {
      EXPECT_EQ(g.rope_scaling.type, h.rope_scaling.type);
      EXPECT_FLOAT_EQ(float(g.rope_scaling.factor), float(h.rope_scaling.factor));
      EXPECT_EQ(g.rope_scaling.original_max_position_embeddings, h.rope_scaling.original_max_position_embeddings);
    }
    return;
  }
  EXPECT_EQ(g.q_lora_rank, h.q_lora_rank);
  EXPECT_EQ(g.kv_lora_rank, h.kv_lora_rank);
  EXPECT_EQ(g.qk_nope_head_dim, h.qk_nope_head_dim);
  EXPECT_EQ(g.v_head_dim, h.v_head_dim);
  EXPECT_EQ(g.n_routed_experts, h.n_routed_experts);
  EXPECT_EQ(g.n_group, h.n_group);
  EXPECT_EQ(g.topk_method, h.topk_method);
  EXPECT_EQ(g.scoring_func, h.scoring_func);
  EXPECT_EQ(g.norm_topk_prob, h.norm_topk_prob);
  EXPECT_FLOAT_EQ(float(g.routed_scaling_factor), float(h.routed_scaling_factor));
  EXPECT_FLOAT_EQ(float(g.rope_scaling.mscale_all_dim), float(h.rope_scaling.mscale_all_dim));
  EXPECT_EQ(g.model_type == "deepseek_v32", h.model_type == "deepseek_v32");
  EXPECT_EQ(g.index_n_heads, h.index_n_heads);
  EXPECT_EQ(g.index_head_dim, h.index_head_dim);
  EXPECT_EQ(g.index_topk, h.index_topk);
}

TEST(Quantize, QuantisedFilesComputeAlikeOnCpuAndRef) {
  for (const char* model :
       {"tiny-v3", "tiny-gguf-v2l", "tiny-qwen2", "tiny-llama", "tiny-qwen3", "tiny-gguf-qwen3", "tiny-v32"}) {
    const std::string dir = model_dir(model);
    if (dir.empty()) continue;
    const io::ModelConfig h = io::load_config(dir + "/config.json");
    const auto tokens = read_tokens(dir + "/tokens.npy");
    for (const char* type : {"Q8_0", "Q4_K_M"}) {
      SCOPED_TRACE(std::string(model) + " " + type);
      const std::string file = convert(model, type);
      expect_same_config(io::config_from_gguf(*io::GgufModel::open(file)), h);
      auto cpu = load(file, "cpu");
      auto ref = load(file, "ref");
      const int64_t V = cpu->config().vocab_size;
      const auto a = prefill(*cpu, tokens), b = prefill(*ref, tokens);
      expect_rows_close(a, b, int64_t(tokens.size()), V, 1e-3, "cpu vs ref row");
      // The fp32 reference forward on llama-quantize's file of the same model and type (gguf_reference.py: exact
      // dequantisation + the HF forward): ours holds the same tensors (TensorsEqualLlamaCppsFiles), so it applies.
      const std::string want = kShared + "gguf/" + model + "/" + type + ".ref_logits.npy";
      if (fs::exists(want))
        expect_rows_close(a, io::npy_read(want).to_f32(), int64_t(tokens.size()), V, 1e-3, "vs reference row");
    }
  }
}

// Same tensors (names, dims, ggml types) with the same bytes; metadata is not compared (the reference files come
// from another converter).
void expect_same_tensors(const std::string& ours, const std::string& theirs) {
  auto a = io::GgufFile::open(ours), b = io::GgufFile::open(theirs);
  ASSERT_EQ(a->tensors().size(), b->tensors().size());
  int differ = 0;
  for (const io::GgufTensor& t : a->tensors()) {
    const io::GgufTensor* u = b->tensor(t.name);
    ASSERT_TRUE(u) << t.name << " is not in " << theirs;
    EXPECT_EQ(t.ne, u->ne) << t.name;
    EXPECT_EQ(io::ggml_type_info(t.type)->name, std::string(io::ggml_type_info(u->type)->name)) << t.name;
    if (t.nbytes != u->nbytes || std::memcmp(t.data, u->data, t.nbytes) != 0) {
      ++differ;
      ADD_FAILURE() << t.name << " (" << io::ggml_type_info(t.type)->name << "): bytes differ from " << theirs;
    }
  }
  EXPECT_EQ(differ, 0);
}

TEST(Quantize, TensorsEqualLlamaCppsFiles) {
  struct Case {
    const char* model;
    const char* type;
  };
  // tiny-qwen2's and tiny-gguf-qwen3's files were converted by another script (metadata differ), then quantised by
  // llama-quantize: the tensor data must still be the same bytes.
  const Case cases[] = {{"tiny-v3", "F32"},          {"tiny-v3", "Q8_0"},           {"tiny-v3", "Q6_K"},
                        {"tiny-v3", "Q4_K_M"},       {"tiny-gguf-v2l", "Q8_0"},     {"tiny-gguf-v2l", "Q6_K"},
                        {"tiny-gguf-v2l", "Q5_K_M"}, {"tiny-gguf-v2l", "Q4_K_M"},   {"tiny-qwen2", "F32"},
                        {"tiny-qwen2", "Q8_0"},      {"tiny-qwen2", "Q6_K"},        {"tiny-qwen2", "Q4_K_M"},
                        {"tiny-gguf-qwen3", "F32"},  {"tiny-gguf-qwen3", "Q8_0"},   {"tiny-gguf-qwen3", "Q6_K"},
                        {"tiny-gguf-qwen3", "Q5_K_M"}, {"tiny-gguf-qwen3", "Q4_K_M"}};
  int compared = 0;
  for (const Case& c : cases) {
    const std::string ref = kShared + "gguf/" + c.model + "/" + c.type + ".gguf";
    if (!fs::exists(ref) || model_dir(c.model).empty()) continue;
    SCOPED_TRACE(std::string(c.model) + " " + c.type);
    expect_same_tensors(convert(c.model, c.type), ref);
    ++compared;
  }
  if (compared == 0) GTEST_SKIP() << kShared << "gguf is missing (../shared beside the repository)";
  EXPECT_EQ(compared, 17);
}

TEST(Quantize, TensorTypesFollowLlamaCppsRules) {
  // A DeepSeek-V2-Lite-like table: 27 layers, 8 experts (llama.cpp's 8-expert rules apply), rows of 2048 / 1536,
  // attn_k_b rows of 128 (not a multiple of 256).
  std::vector<std::pair<std::string, std::vector<int64_t>>> t = {
      {"output.weight", {2048, 102400}}, {"output_norm.weight", {2048}}, {"token_embd.weight", {2048, 102400}}};
  for (int l : {0, 2, 3, 4, 5, 23, 26}) {
    const std::string b = "blk." + std::to_string(l) + ".";
    for (auto& e : std::vector<std::pair<std::string, std::vector<int64_t>>>{
             {b + "attn_k_b.weight", {128, 512, 16}},     {b + "attn_kv_a_mqa.weight", {2048, 576}},
             {b + "attn_kv_a_norm.weight", {512}},        {b + "attn_norm.weight", {2048}},
             {b + "attn_output.weight", {2048, 2048}},    {b + "attn_q.weight", {2048, 3072}},
             {b + "attn_v_b.weight", {512, 128, 16}},     {b + "exp_probs_b.bias", {8}},
             {b + "ffn_down_exps.weight", {1536, 2048, 8}}, {b + "ffn_down_shexp.weight", {2816, 2048}},
             {b + "ffn_gate_exps.weight", {2048, 1536, 8}}, {b + "ffn_gate_inp.weight", {2048, 8}},
             {b + "ffn_norm.weight", {2048}},             {b + "ffn_up_exps.weight", {2048, 1536, 8}}})
      t.push_back(e);
  }
  auto types = [&](const char* recipe, int64_t n_expert) {
    const auto v = model::recipe_types(*model::find_recipe(recipe), t, n_expert, 27);
    std::map<std::string, std::string> m;
    for (size_t i = 0; i < t.size(); ++i) m[t[i].first] = std::string(dtype_name(v[i]));
    return m;
  };
  auto m = types("q4_k_m", 8);
  EXPECT_EQ(m["output.weight"], "Q6_K");
  EXPECT_EQ(m["token_embd.weight"], "Q4_K");
  EXPECT_EQ(m["output_norm.weight"], "F32");
  EXPECT_EQ(m["blk.0.ffn_gate_inp.weight"], "F32");
  EXPECT_EQ(m["blk.0.exp_probs_b.bias"], "F32");
  EXPECT_EQ(m["blk.0.attn_k_b.weight"], "Q5_0");      // Q4_K does not fit rows of 128
  EXPECT_EQ(m["blk.0.attn_v_b.weight"], "Q4_K");
  EXPECT_EQ(m["blk.0.attn_output.weight"], "Q5_K");   // 8 experts
  EXPECT_EQ(m["blk.0.attn_q.weight"], "Q4_K");
  // use_more_bits(i, 27): i < 3, i >= 23, (i - 3) % 3 == 2.
  EXPECT_EQ(m["blk.0.ffn_down_exps.weight"], "Q6_K");
  EXPECT_EQ(m["blk.2.ffn_down_shexp.weight"], "Q6_K");
  EXPECT_EQ(m["blk.3.ffn_down_exps.weight"], "Q4_K");
  EXPECT_EQ(m["blk.4.ffn_down_exps.weight"], "Q4_K");
  EXPECT_EQ(m["blk.5.ffn_down_exps.weight"], "Q6_K");
  EXPECT_EQ(m["blk.23.ffn_down_exps.weight"], "Q6_K");
  EXPECT_EQ(m["blk.5.ffn_up_exps.weight"], "Q4_K");
  m = types("Q4_K_M", 64);
  EXPECT_EQ(m["blk.0.attn_output.weight"], "Q4_K");   // not 8 experts
  m = types("Q4_K_S", 8);
  EXPECT_EQ(m["blk.2.ffn_down_exps.weight"], "Q5_K");
  EXPECT_EQ(m["blk.3.ffn_down_exps.weight"], "Q4_K");
  m = types("Q5_K_S", 64);
  EXPECT_EQ(m["blk.0.attn_k_b.weight"], "Q5_1");
  EXPECT_EQ(m["blk.0.ffn_down_exps.weight"], "Q5_K");
  EXPECT_EQ(m["output.weight"], "Q6_K");
  m = types("Q6_K", 64);
  EXPECT_EQ(m["blk.0.attn_k_b.weight"], "Q8_0");
  m = types("Q8_0", 64);
  EXPECT_EQ(m["output.weight"], "Q8_0");
  EXPECT_EQ(m["blk.0.attn_k_b.weight"], "Q8_0");
  m = types("BF16", 64);
  EXPECT_EQ(m["blk.0.attn_k_b.weight"], "BF16");
  EXPECT_EQ(m["blk.0.ffn_gate_inp.weight"], "F32");
  EXPECT_EQ(m["blk.0.attn_norm.weight"], "F32");
  // Tied embeddings: token_embd is quantised as the output; rows that fit no 32-block go to F16.
  t.erase(t.begin());
  t.push_back({"blk.0.odd.weight", {48, 4}});
  m = types("Q4_0", 64);
  EXPECT_EQ(m["token_embd.weight"], "Q6_K");
  EXPECT_EQ(m["blk.0.odd.weight"], "F16");
  EXPECT_EQ(model::find_recipe("Q3_K_M"), nullptr);
}

TEST(Quantize, DenseTensorTypesFollowLlamaCppsRules) {
  // R1-Distill-Qwen-1.5B's table: 28 layers, rows of 1536 / 8960 (multiples of 256), no experts. attn_v and ffn_down
  // are counted in loader order (one per layer): use_more_bits(i, 28) is i < 3, i >= 24, (i - 3) % 3 == 2 (5, .., 23).
  std::vector<std::pair<std::string, std::vector<int64_t>>> t = {
      {"output.weight", {1536, 151936}}, {"output_norm.weight", {1536}}, {"token_embd.weight", {1536, 151936}}};
  for (int l = 0; l < 28; ++l) {
    const std::string b = "blk." + std::to_string(l) + ".";
    for (auto& e : std::vector<std::pair<std::string, std::vector<int64_t>>>{
             {b + "attn_k.bias", {256}},              {b + "attn_k.weight", {1536, 256}},
             {b + "attn_norm.weight", {1536}},        {b + "attn_output.weight", {1536, 1536}},
             {b + "attn_q.bias", {1536}},             {b + "attn_q.weight", {1536, 1536}},
             {b + "attn_v.bias", {256}},              {b + "attn_v.weight", {1536, 256}},
             {b + "ffn_down.weight", {8960, 1536}},   {b + "ffn_gate.weight", {1536, 8960}},
             {b + "ffn_norm.weight", {1536}},         {b + "ffn_up.weight", {1536, 8960}}})
      t.push_back(e);
  }
  auto types = [&](const char* recipe, bool type_70b) {
    const auto v = model::recipe_types(*model::find_recipe(recipe), t, 0, 28, type_70b);
    std::map<std::string, std::string> m;
    for (size_t i = 0; i < t.size(); ++i) m[t[i].first] = std::string(dtype_name(v[i]));
    return m;
  };
  auto m = types("Q4_K_M", false);
  EXPECT_EQ(m["output.weight"], "Q6_K");
  EXPECT_EQ(m["token_embd.weight"], "Q4_K");
  EXPECT_EQ(m["blk.0.attn_q.bias"], "F32");
  for (int l : {0, 2, 5, 8, 24, 27}) {
    EXPECT_EQ(m["blk." + std::to_string(l) + ".attn_v.weight"], "Q6_K") << l;
    EXPECT_EQ(m["blk." + std::to_string(l) + ".ffn_down.weight"], "Q6_K") << l;
  }
  for (int l : {3, 4, 6, 22}) {
    EXPECT_EQ(m["blk." + std::to_string(l) + ".attn_v.weight"], "Q4_K") << l;
    EXPECT_EQ(m["blk." + std::to_string(l) + ".ffn_down.weight"], "Q4_K") << l;
  }
  EXPECT_EQ(m["blk.0.attn_k.weight"], "Q4_K");
  EXPECT_EQ(m["blk.0.attn_output.weight"], "Q4_K");  // the 8-expert rule only
  m = types("Q4_K_S", false);
  EXPECT_EQ(m["blk.3.attn_v.weight"], "Q5_K");  // the first 4
  EXPECT_EQ(m["blk.4.attn_v.weight"], "Q4_K");
  EXPECT_EQ(m["blk.2.ffn_down.weight"], "Q5_K");  // i < 28 / 8
  EXPECT_EQ(m["blk.3.ffn_down.weight"], "Q4_K");
  // llama.cpp's 70B models: attn_v that would be Q4_K (or Q3_K) is Q5_K.
  m = types("Q4_K_M", true);
  EXPECT_EQ(m["blk.0.attn_v.weight"], "Q6_K");
  EXPECT_EQ(m["blk.3.attn_v.weight"], "Q5_K");
  EXPECT_EQ(m["blk.3.attn_k.weight"], "Q4_K");
  m = types("Q4_K_S", true);
  EXPECT_EQ(m["blk.9.attn_v.weight"], "Q5_K");
  m = types("Q6_K", true);
  EXPECT_EQ(m["blk.9.attn_v.weight"], "Q6_K");
  m = types("Q4_0", true);
  EXPECT_EQ(m["blk.9.attn_v.weight"], "Q4_0");

  io::ModelConfig c = io::load_config(std::string(DS_SOURCE_DIR) + "/configs/r1-distill-llama-8b.json");
  EXPECT_FALSE(model::llama_70b_type(c));
  c.num_hidden_layers = 80;
  EXPECT_TRUE(model::llama_70b_type(c));  // R1-Distill-Llama-70B: 80 layers, 8 kv heads
  c.num_key_value_heads = c.num_attention_heads;
  EXPECT_FALSE(model::llama_70b_type(c));  // llama.cpp's 65B
  c = io::load_config(std::string(DS_SOURCE_DIR) + "/configs/r1-distill-qwen-1.5b.json");
  c.num_hidden_layers = 80;
  EXPECT_TRUE(model::llama_70b_type(c));  // qwen2 with 80 layers (Qwen2.5-72B)
}

TEST(Quantize, Llama3RopeFreqsAreTheConvertersBitForBit) {
  // R1-Distill-Llama-8B (head_dim 128, theta 500000, factor 8 over 8192): LlamaModel.generate_extra_tensors' output,
  // run with torch: 29 ones, then six smoothed divisors, then 8s. Each is float32 arithmetic rounded per operation;
  // computing in double (or fusing a multiply-add) moves 29, 33 and 34 by one ulp.
  const io::ModelConfig c = io::load_config(std::string(DS_SOURCE_DIR) + "/configs/r1-distill-llama-8b.json");
  const std::vector<float> f = model::llama3_rope_freqs(c);
  ASSERT_EQ(f.size(), 64u);
  const std::vector<float> mid = {0x1.351daap+0f, 0x1.8dac94p+0f, 0x1.035e3ap+1f,
                                  0x1.58e65cp+1f, 0x1.d7959cp+1f, 0x1.50780cp+2f};
  for (size_t i = 0; i < 64; ++i) {
    const float want = i < 29 ? 1.0f : i < 35 ? mid[i - 29] : 8.0f;
    EXPECT_EQ(f[i], want) << i;
  }
  // tiny-llama (head_dim 16): 1 x4, 0x1.58e65cp+1, 8 x3; the F32 file carries exactly these.
  const io::ModelConfig t = io::load_config(fixture_dir("tiny-llama") + "/config.json");
  EXPECT_EQ(model::llama3_rope_freqs(t), (std::vector<float>{1, 1, 1, 1, 0x1.58e65cp+1f, 8, 8, 8}));
  auto file = io::GgufFile::open(convert("tiny-llama", "F32"));
  const io::GgufTensor* rf = file->tensor("rope_freqs.weight");
  ASSERT_TRUE(rf);
  ASSERT_EQ(rf->ne, (std::vector<int64_t>{8}));
  const float* d = reinterpret_cast<const float*>(rf->data);
  EXPECT_EQ(std::vector<float>(d, d + 8), model::llama3_rope_freqs(t));
  // Other models carry none.
  EXPECT_TRUE(model::llama3_rope_freqs(io::load_config(fixture_dir("tiny-qwen3") + "/config.json")).empty());
}

TEST(Quantize, DenseMetadataIsTheConverters) {
  auto u = [](const io::GgufFile& f, const std::string& k) -> int64_t {
    const io::GgufValue* v = f.find(k);
    return v ? v->i : -1;
  };
  {
    auto f = io::GgufFile::open(convert("tiny-qwen2", "Q4_K_M"));
    EXPECT_EQ(f->find("general.architecture")->s, "qwen2");
    EXPECT_EQ(u(*f, "general.file_type"), 15);
    EXPECT_EQ(u(*f, "qwen2.block_count"), 3);
    EXPECT_EQ(u(*f, "qwen2.attention.head_count_kv"), 2);
    EXPECT_EQ(u(*f, "qwen2.context_length"), 4096);
    EXPECT_EQ(f->find("qwen2.attention.key_length"), nullptr);  // config.json names no head_dim
    EXPECT_EQ(f->find("qwen2.rope.dimension_count"), nullptr);  // LlamaModel's key only
    EXPECT_EQ(f->find("qwen2.rope.scaling.type"), nullptr);
    EXPECT_NE(f->tensor("blk.0.attn_q.bias"), nullptr);
    EXPECT_EQ(f->tensor("blk.0.attn_output.bias"), nullptr);
    EXPECT_NE(f->tensor("output.weight"), nullptr);
  }
  {
    auto f = io::GgufFile::open(convert("tiny-llama", "F32"));
    EXPECT_EQ(f->find("general.architecture")->s, "llama");
    EXPECT_EQ(u(*f, "general.file_type"), 0);
    EXPECT_EQ(u(*f, "llama.vocab_size"), 1024);
    EXPECT_EQ(u(*f, "llama.rope.dimension_count"), 16);
    EXPECT_EQ(u(*f, "llama.attention.key_length"), 16);  // config.json names head_dim
    EXPECT_FLOAT_EQ(float(f->find("llama.attention.layer_norm_rms_epsilon")->f), 1e-5f);
    EXPECT_EQ(f->find("llama.rope.scaling.type"), nullptr);  // llama3 scaling is rope_freqs
    EXPECT_EQ(f->tensor("blk.0.attn_q.bias"), nullptr);
  }
  {
    auto f = io::GgufFile::open(convert("tiny-qwen3", "BF16"));
    EXPECT_EQ(f->find("general.architecture")->s, "qwen3");
    EXPECT_EQ(u(*f, "general.file_type"), 32);
    EXPECT_EQ(u(*f, "qwen3.attention.key_length"), 32);
    EXPECT_EQ(u(*f, "qwen3.attention.value_length"), 32);
    EXPECT_EQ(f->find("qwen3.rope.scaling.type")->s, "yarn");
    EXPECT_FLOAT_EQ(float(f->find("qwen3.rope.scaling.factor")->f), 4.0f);
    EXPECT_EQ(u(*f, "qwen3.rope.scaling.original_context_length"), 64);
    EXPECT_EQ(f->find("qwen3.rope.scaling.yarn_beta_fast"), nullptr);  // not in config.json's rope_scaling
    EXPECT_EQ(f->tensor("output.weight"), nullptr);                    // tied
    EXPECT_STREQ(io::ggml_type_info(f->tensor("blk.0.attn_q_norm.weight")->type)->name, "F32");
    EXPECT_STREQ(io::ggml_type_info(f->tensor("blk.0.attn_q.weight")->type)->name, "BF16");
  }
}

TEST(Quantize, RecognisesTheDistillsTokenizers) {
  // The converter's name for a tokenizer with Qwen's regex is qwen2, or deepseek-r1-qwen for DeepSeek's, whose
  // post-processor adds the BOS; Llama 3's regex is llama-bpe.
  io::Json tj = {{"model", {{"type", "BPE"}}}, {"pre_tokenizer", tok::pre_tokenizer_for_gguf_pre("qwen2")}};
  auto detect = [&](const io::Json& j) {
    const fs::path p = scratch() / "tokenizer.json";
    std::ofstream(p) << j.dump();
    return rt::detect_tokenizer_pre(p.string());
  };
  EXPECT_EQ(detect(tj), "qwen2");
  tj["post_processor"] = {{"type", "ByteLevel"}};
  EXPECT_EQ(detect(tj), "qwen2");
  tj["post_processor"] = {{"type", "TemplateProcessing"},
                          {"single", {{{"SpecialToken", {{"id", "<bos>"}, {"type_id", 0}}}},
                                      {{"Sequence", {{"id", "A"}, {"type_id", 0}}}}}}};
  EXPECT_EQ(detect(tj), "deepseek-r1-qwen");
  tj["pre_tokenizer"] = tok::pre_tokenizer_for_gguf_pre("llama-bpe");
  EXPECT_EQ(detect(tj), "llama-bpe");
}

TEST(Quantize, LlamaBiasesArePermutedWithTheirRows) {
  // tiny-llama with attention_bias: LlamaModel.permute applies to q_proj.bias / k_proj.bias as to their rows, and
  // o_proj.bias becomes attn_output.bias. The engine on the checkpoint (half-split RoPE) and on its F32 file (permuted
  // q/k, adjacent-pair RoPE) must agree.
  const std::string src = fixture_dir("tiny-llama");
  const fs::path dir = scratch() / "tiny-llama-bias";
  fs::create_directories(dir);
  io::Json cfg = io::read_json_file(src + "/config.json");
  cfg["attention_bias"] = true;
  std::ofstream(dir / "config.json") << cfg.dump(2);
  const io::ModelConfig c = io::load_config((dir / "config.json").string());
  std::vector<std::tuple<std::string, std::vector<int64_t>, std::vector<float>>> ts;
  auto st = io::SafetensorsFile::open(src + "/model.safetensors");
  for (const io::TensorInfo& t : st->tensors()) {
    ASSERT_EQ(t.dtype, DType::BF16) << t.name;
    std::vector<float> v(size_t(t.numel()));
    for (size_t i = 0; i < v.size(); ++i) v[i] = bf16_to_f32(reinterpret_cast<const uint16_t*>(t.data)[i]);
    ts.emplace_back(t.name, t.shape, std::move(v));
  }
  const int64_t q = c.num_attention_heads * c.head_dim, kv = c.num_key_value_heads * c.head_dim;
  for (int64_t l = 0; l < c.num_hidden_layers; ++l) {
    const std::string p = "model.layers." + std::to_string(l) + ".self_attn.";
    for (const auto& [name, n] : {std::pair<std::string, int64_t>{"q_proj", q}, {"k_proj", kv}, {"v_proj", kv},
                                  {"o_proj", c.hidden_size}}) {
      std::vector<float> b(static_cast<size_t>(n));
      for (int64_t i = 0; i < n; ++i) b[size_t(i)] = 0.5f * std::sin(0.7f * float(i) + float(l) + float(n));
      ts.emplace_back(p + name + ".bias", std::vector<int64_t>{n}, std::move(b));
    }
  }
  io::Json header = io::Json::object();
  uint64_t off = 0;
  for (const auto& [name, shape, v] : ts) {
    header[name] = {{"dtype", "F32"}, {"shape", shape}, {"data_offsets", {off, off + v.size() * 4}}};
    off += v.size() * 4;
  }
  std::string h = header.dump();
  while (h.size() % 8) h += ' ';  // padded as the safetensors library does: the F32 data must be aligned
  std::ofstream f(dir / "model.safetensors", std::ios::binary);
  const uint64_t n = h.size();
  f.write(reinterpret_cast<const char*>(&n), 8);
  f << h;
  for (const auto& [name, shape, v] : ts)
    f.write(reinterpret_cast<const char*>(v.data()), std::streamsize(v.size() * 4));
  f.close();

  rt::ConvertOptions o;
  o.model = dir.string();
  o.out = (scratch() / "tiny-llama-bias.gguf").string();
  o.type = "F32";
  o.threads = 2;
  rt::convert_to_gguf(o);
  auto g = io::GgufFile::open(o.out);
  for (const char* t : {"blk.0.attn_q.bias", "blk.0.attn_k.bias", "blk.0.attn_v.bias", "blk.0.attn_output.bias"})
    EXPECT_NE(g->tensor(t), nullptr) << t;
  auto from_gguf = load(o.out, "cpu");
  EXPECT_TRUE(from_gguf->config().rope_interleaved);
  EXPECT_TRUE(from_gguf->config().qkv_bias && from_gguf->config().o_bias);
  rt::EngineOptions eo;
  eo.backend = "cpu";
  eo.threads = 2;
  eo.precision = ops::Precision::F32;
  auto from_hf = rt::Engine::load(dir.string(), eo);
  const auto tokens = read_tokens(src + "/tokens.npy");
  const auto a = prefill(*from_gguf, tokens), b = prefill(*from_hf, tokens);
  expect_rows_close(a, b, int64_t(tokens.size()), c.vocab_size, 1e-4, "gguf vs checkpoint row");
  // The biases matter: the fixture's logits (without them) are far off.
  EXPECT_GT(max_abs_diff(a.data(), io::npy_read(src + "/logits.npy").to_f32().data(), a.size()), 0.05);
}

TEST(Quantize, RandomWeightsOfAConfig) {
  rt::ConvertOptions o;
  o.random = true;
  o.config = fixture_dir("tiny-v3") + "/config.json";
  o.layers = 2;
  o.type = "Q4_K_M";
  o.out = (scratch() / "random.gguf").string();
  o.threads = 2;
  const rt::ConvertResult r = rt::convert_to_gguf(o);
  EXPECT_EQ(r.bytes, fs::file_size(o.out));
  EXPECT_FALSE(fs::exists(o.out + ".tmp"));
  auto cpu = load(o.out, "cpu");
  auto ref = load(o.out, "ref");
  EXPECT_EQ(cpu->config().num_hidden_layers, 2);
  const std::vector<int32_t> tokens = {0, 17, 300, 5, 1000, 42};
  expect_rows_close(prefill(*cpu, tokens), prefill(*ref, tokens), 6, cpu->config().vocab_size, 1e-3, "row");

  // Tied embeddings (no output.weight: token_embd is quantised as the output) and FP8 random weights.
  io::Json cfg = io::read_json_file(o.config);
  cfg["tie_word_embeddings"] = true;
  const fs::path tied = scratch() / "tied-config.json";
  std::ofstream(tied) << cfg.dump(2);
  o.config = tied.string();
  o.random_dtype = DType::F8_E4M3;
  o.type = "Q6_K";
  o.out = (scratch() / "random-tied.gguf").string();
  rt::convert_to_gguf(o);
  auto f = io::GgufFile::open(o.out);
  EXPECT_EQ(f->tensor("output.weight"), nullptr);
  EXPECT_STREQ(io::ggml_type_info(f->tensor("token_embd.weight")->type)->name, "Q8_0");  // ne[0] 128: no Q6_K
  auto t_cpu = load(o.out, "cpu");
  auto t_ref = load(o.out, "ref");
  EXPECT_TRUE(t_cpu->config().tie_word_embeddings);
  expect_rows_close(prefill(*t_cpu, tokens), prefill(*t_ref, tokens), 6, t_cpu->config().vocab_size, 1e-3, "row");

  // Dense configs (the distills' benchmark files are made this way from configs/r1-distill-*.json).
  for (const char* m : {"tiny-qwen2", "tiny-llama", "tiny-qwen3"}) {
    SCOPED_TRACE(m);
    o.config = fixture_dir(m) + "/config.json";
    o.random_dtype = DType::BF16;
    o.layers = 2;
    o.type = "Q4_K_M";
    o.out = (scratch() / (std::string("random-") + m + ".gguf")).string();
    rt::convert_to_gguf(o);
    auto d_cpu = load(o.out, "cpu");
    auto d_ref = load(o.out, "ref");
    EXPECT_EQ(d_cpu->config().model_type, io::load_config(o.config).model_type);
    EXPECT_EQ(d_cpu->config().num_hidden_layers, 2);
    const std::vector<int32_t> ids = {1, 17, 300, 5, 900, 42};  // the fixtures' vocabularies have 1000 tokens
    expect_rows_close(prefill(*d_cpu, ids), prefill(*d_ref, ids), 6, d_cpu->config().vocab_size, 1e-3, "row");
  }
}

TEST(Quantize, VocabularyFromTokenizerJsonIsTheConvertersRecipe) {
  const std::string tok_dir = std::string(DS_SOURCE_DIR) + "/.cache/tokenizer-deepseek-v3";
  if (!fs::exists(tok_dir + "/tokenizer.json")) GTEST_SKIP() << tok_dir << " is missing (scripts/fetch_tokenizer.sh)";
  const io::Json tj = io::read_json_file(tok_dir + "/tokenizer.json", 256u << 20);
  const io::Json tc = io::read_json_file(tok_dir + "/tokenizer_config.json");
  EXPECT_EQ(rt::detect_tokenizer_pre(tok_dir + "/tokenizer.json"), "deepseek-v3");
  const fs::path p = scratch() / "vocab.gguf";
  io::GgufWriter w(p.string());
  w.set_string("general.architecture", "deepseek2");
  io::add_gpt2_tokenizer_metadata(w, tj, tc, io::Json::object(), 129280, "deepseek-v3", "", "tokenizer.json");
  w.write_header();
  w.finish();
  // The recipe tests/tokenizer checks byte for byte against gguf-py's writer (tools/gguf_goldens/tokenizer_gguf.py).
  const std::vector<uint8_t> want = tok::test::converter_vocab(tj, tc, 129280, "deepseek-v3").bytes();
  std::ifstream f(p, std::ios::binary);
  const std::vector<uint8_t> got((std::istreambuf_iterator<char>(f)), {});
  ASSERT_GE(got.size(), want.size());
  EXPECT_TRUE(std::equal(want.begin(), want.end(), got.begin())) << "metadata differs from the converter recipe";
  for (size_t i = want.size(); i < got.size(); ++i) ASSERT_EQ(got[i], 0) << "padding at " << i;
  EXPECT_LT(got.size() - want.size(), 32u);
}

TEST(Quantize, RefusesToOverwriteTheInput) {
  // On a copy: were the check broken, the fixture itself must not be the victim.
  const fs::path dir = scratch() / "copy-tiny-v3";
  fs::create_directories(dir);
  for (const char* f : {"config.json", "model.safetensors"}) fs::copy_file(fixture_dir("tiny-v3") + "/" + f, dir / f);
  const auto size = fs::file_size(dir / "model.safetensors");
  rt::ConvertOptions o;
  o.model = dir.string();
  o.type = "Q8_0";
  o.out = (dir / "model.safetensors").string();
  EXPECT_TRUE(throws_with([&] { rt::convert_to_gguf(o); }, {"model.safetensors", "refusing to overwrite"}));
  EXPECT_EQ(fs::file_size(dir / "model.safetensors"), size);
  o.out = (dir / "config.json").string();
  EXPECT_TRUE(throws_with([&] { rt::convert_to_gguf(o); }, {"config.json", "refusing to overwrite"}));
  o.out = dir.string();
  EXPECT_TRUE(throws_with([&] { rt::convert_to_gguf(o); }, {"is a directory"}));
  o.out = (scratch() / "x.gguf").string();
  o.type = "Q3_K_M";
  EXPECT_TRUE(throws_with([&] { rt::convert_to_gguf(o); }, {"Q3_K_M", "Q4_K_M", "Q8_0"}));
  // A failing conversion leaves neither the file nor its .tmp.
  o.type = "Q8_0";
  o.model = (scratch() / "no-such-model").string();
  EXPECT_TRUE(throws_with([&] { rt::convert_to_gguf(o); }, {"no-such-model"}));
  EXPECT_FALSE(fs::exists(o.out));
  EXPECT_FALSE(fs::exists(o.out + ".tmp"));
}

TEST(Quantize, CommandLine) {
  auto run = [](const std::string& args) {
    FILE* p = popen((kBin + " " + args + " 2>&1").c_str(), "r");
    std::string out;
    char buf[4096];
    size_t n;
    while (p && (n = fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
    const int st = p ? pclose(p) : -1;
    return std::pair<int, std::string>(WIFEXITED(st) ? WEXITSTATUS(st) : -1, out);
  };
  auto [code, out] = run("quantize --help");
  EXPECT_EQ(code, 0);
  for (const char* s : {"Q4_K_M", "Q5_K_S", "BF16", "--random-weights", "--threads", "MTP", "qwen2", "llama", "qwen3"})
    EXPECT_NE(out.find(s), std::string::npos) << s;
  const std::string file = (scratch() / "cli.gguf").string();
  std::tie(code, out) = run("quantize --model " + fixture_dir("tiny-v2") + " --out " + file + " --type q5_k_m -t 2");
  EXPECT_EQ(code, 0) << out;
  EXPECT_NE(out.find("wrote " + file), std::string::npos) << out;
  EXPECT_TRUE(fs::exists(file));
  EXPECT_FALSE(fs::exists(file + ".tmp"));
  auto e = load(file, "cpu");
  EXPECT_EQ(e->config().q_lora_rank, io::load_config(fixture_dir("tiny-v2") + "/config.json").q_lora_rank);
  std::tie(code, out) = run("quantize --model " + fixture_dir("tiny-v2") + " --out " + file + " --type Q2_K");
  EXPECT_EQ(code, 1);
  EXPECT_NE(out.find("error: quantize: --type 'Q2_K' is not one of"), std::string::npos) << out;
}

}  // namespace
}  // namespace ds::test
