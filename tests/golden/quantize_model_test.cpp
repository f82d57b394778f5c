// SPDX-License-Identifier: MIT
// `deepseek quantize` end to end (runtime/gguf_convert.h): Hugging Face fixtures -> GGUF -> loaded back by the
// engine.
//  - F32 and BF16 files (bf16 checkpoints convert exactly) give the fixture's logits.npy within 1e-3 and its greedy
//    continuation; an FP8 checkpoint's F32 file too (FP8 dequantised exactly);
//  - quantised files (Q8_0, Q4_K_M) compute the same logits on the cpu kernels as on the `ref` backend (Precision
//    F32), and as the fp32 reference forward on llama-quantize's file of the same type where ../shared has it; their
//    metadata gives back the config;
//  - tiny-v3's F32 file holds the tensors of llama.cpp's F32 conversion (../shared/fixtures/gguf/tiny-v3/F32.gguf):
//    same names, shapes, types and bytes; the quantised files hold, tensor by tensor, the bytes llama-quantize wrote
//    for the same model (../shared/fixtures/gguf/*/Q*.gguf, made from F32 conversions without an importance matrix);
//  - llama.cpp's per-tensor type rules; random weights; the vocabulary written from a real tokenizer.json equals the
//    converter recipe the tokenizer tests check against gguf-py; refusing to overwrite the input.
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
#include "model/gguf_export.h"
#include "runtime/engine.h"
#include "runtime/gguf_convert.h"
#include "runtime/session.h"
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

TEST(Quantize, F32AndBf16FilesMatchTheModelsReference) {
  struct Case {
    const char* model;
    const char* type;
  };
  // tiny-v3-fp8: FP8 weights dequantised exactly into the F32 file (a BF16 file of them would round).
  const Case cases[] = {{"tiny-v3", "F32"},       {"tiny-v3", "BF16"},      {"tiny-v2-lite", "BF16"},
                        {"tiny-v3-fp8", "F32"},   {"tiny-gguf-v2l", "F32"}, {"tiny-gguf-v2l", "BF16"}};
  for (const Case& c : cases) {
    SCOPED_TRACE(std::string(c.model) + " " + c.type);
    const std::string dir = model_dir(c.model);
    if (dir.empty()) {
      std::printf("skipped %s: ../shared/fixtures/models/%s is missing\n", c.model, c.model);
      continue;
    }
    auto e = load(convert(c.model, c.type), "cpu");
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

TEST(Quantize, QuantisedFilesComputeAlikeOnCpuAndRef) {
  for (const char* model : {"tiny-v3", "tiny-gguf-v2l"}) {
    const std::string dir = model_dir(model);
    if (dir.empty()) continue;
    const io::ModelConfig h = io::load_config(dir + "/config.json");
    const auto tokens = read_tokens(dir + "/tokens.npy");
    for (const char* type : {"Q8_0", "Q4_K_M"}) {
      SCOPED_TRACE(std::string(model) + " " + type);
      const std::string file = convert(model, type);
      const io::ModelConfig g = io::config_from_gguf(*io::GgufModel::open(file));
      EXPECT_EQ(g.num_hidden_layers, h.num_hidden_layers);
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
  const Case cases[] = {{"tiny-v3", "F32"},          {"tiny-v3", "Q8_0"},         {"tiny-v3", "Q6_K"},
                        {"tiny-v3", "Q4_K_M"},       {"tiny-gguf-v2l", "Q8_0"},   {"tiny-gguf-v2l", "Q6_K"},
                        {"tiny-gguf-v2l", "Q5_K_M"}, {"tiny-gguf-v2l", "Q4_K_M"}};
  int compared = 0;
  for (const Case& c : cases) {
    const std::string ref = kShared + "gguf/" + c.model + "/" + c.type + ".gguf";
    if (!fs::exists(ref) || model_dir(c.model).empty()) continue;
    SCOPED_TRACE(std::string(c.model) + " " + c.type);
    expect_same_tensors(convert(c.model, c.type), ref);
    ++compared;
  }
  if (compared == 0) GTEST_SKIP() << kShared << "gguf is missing (../shared beside the repository)";
  EXPECT_EQ(compared, 8);
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
  for (const char* s : {"Q4_K_M", "Q5_K_S", "BF16", "--random-weights", "--threads", "MTP"})
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
