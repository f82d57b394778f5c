// SPDX-License-Identifier: MIT
// Checkpoint-vs-config validation (reliability.md M1-M3, S10): every bad model folder ends in a ds::Error whose
// message names the tensor or field, never a crash. Cases are built from a real fixture, altered one fault at a time.
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>

#include <nlohmann/json.hpp>

#include "base/error.h"
#include "expect_error.h"
#include "golden/fixture_util.h"
#include "io/checkpoint.h"
#include "runtime/engine.h"

namespace ds::test {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

struct Tensor {
  std::string dtype;
  std::vector<int64_t> shape;
  std::string bytes;
};
using TensorMap = std::map<std::string, Tensor>;

TensorMap read_fixture(const std::string& name) {
  auto ck = io::Checkpoint::open(fixture_dir(name));
  TensorMap m;
  for (const auto& n : ck->names()) {
    const io::TensorInfo* t = ck->find(n);
    m[n] = {std::string(dtype_name(t->dtype)), t->shape,
            std::string(reinterpret_cast<const char*>(t->data), size_t(t->end - t->begin))};
  }
  return m;
}

// As the safetensors library writes files: largest element size first and the header padded to 8 bytes, so every
// tensor is aligned (the loader rejects misaligned data).
void write_safetensors(const fs::path& p, const TensorMap& m) {
  json h = json::object();
  uint64_t off = 0;
  std::string data;
  for (int size : {8, 4, 2, 1}) {
    for (const auto& [name, t] : m) {
      DType d;
      if ((parse_dtype(t.dtype, &d) ? dtype_size(d) : 1) != size) continue;
      h[name] = {{"dtype", t.dtype}, {"shape", t.shape}, {"data_offsets", {off, off + t.bytes.size()}}};
      off += t.bytes.size();
      data += t.bytes;
    }
  }
  std::string hs = h.dump();
  while (hs.size() % 8) hs += ' ';
  std::ofstream f(p, std::ios::binary);
  const uint64_t n = hs.size();
  f.write(reinterpret_cast<const char*>(&n), 8);
  f << hs << data;
}

// A temporary model folder: the fixture's config (edited by `cfg_edit`) and tensors (edited by `edit`).
struct TempModel {
  fs::path dir;
  TempModel(const std::string& fixture, const std::function<void(TensorMap&)>& edit,
            const std::function<void(json&)>& cfg_edit = nullptr) {
    static int counter = 0;
    dir = fs::temp_directory_path() / ("ds_model_load_" + std::to_string(::getpid()) + "_" + std::to_string(counter++));
    fs::create_directories(dir);
    TensorMap m = read_fixture(fixture);
    if (edit) edit(m);
    write_safetensors(dir / "model.safetensors", m);
    std::ifstream in(fixture_dir(fixture) + "/config.json");
    json cfg = json::parse(in);
    if (cfg_edit) cfg_edit(cfg);
    std::ofstream(dir / "config.json") << cfg.dump(2);
  }
  ~TempModel() { fs::remove_all(dir); }
};

std::string load_error(const TempModel& m) {
  try {
    rt::Engine::load(m.dir.string(), rt::EngineOptions{});
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

#define EXPECT_LOAD_ERROR(model, ...)                                            \
  do {                                                                          \
    const std::string msg = load_error(model);                                  \
    ASSERT_FALSE(msg.empty()) << "loaded without error";                        \
    for (const char* part : {__VA_ARGS__}) EXPECT_NE(msg.find(part), std::string::npos) << msg; \
  } while (0)

TEST(ModelLoad, UnalteredCopyLoads) {
  TempModel m("tiny-v3", nullptr);
  auto e = rt::Engine::load(m.dir.string(), rt::EngineOptions{});
  EXPECT_TRUE(e->model().has_mtp());
}

TEST(ModelLoad, MissingTensor) {
  TempModel m("tiny-v3", [](TensorMap& t) { t.erase("model.layers.1.self_attn.kv_b_proj.weight"); });
  EXPECT_LOAD_ERROR(m, "missing tensor", "model.layers.1.self_attn.kv_b_proj.weight", "[128, 32]");
}

TEST(ModelLoad, WrongShape) {
  TempModel m("tiny-v3", [](TensorMap& t) { t["model.layers.0.self_attn.kv_a_proj_with_mqa.weight"].shape = {80, 64}; });
  EXPECT_LOAD_ERROR(m, "kv_a_proj_with_mqa", "[80, 64]", "expected [40, 128]");
}

TEST(ModelLoad, UnexpectedTensor) {
  TempModel m("tiny-v3", [](TensorMap& t) { t["model.layers.0.mlp.extra.weight"] = {"BF16", {2}, std::string(4, '\0')}; });
  EXPECT_LOAD_ERROR(m, "unexpected tensor", "model.layers.0.mlp.extra.weight");
}

TEST(ModelLoad, WrongDtype) {
  TempModel m("tiny-v3", [](TensorMap& t) {
    auto& b = t["model.layers.1.mlp.gate.e_score_correction_bias"];
    b.dtype = "BF16";
    b.bytes.resize(b.bytes.size() / 2);
  });
  EXPECT_LOAD_ERROR(m, "e_score_correction_bias", "must be F32");
}

TEST(ModelLoad, Fp8ScaleWrongShape) {
  TempModel m("tiny-v3-fp8", [](TensorMap& t) {
    auto& s = t["model.layers.0.self_attn.kv_a_proj_with_mqa.weight_scale_inv"];  // [2, 2]: 144 rows need 2 blocks
    s.shape = {1, 4};
  });
  EXPECT_LOAD_ERROR(m, "kv_a_proj_with_mqa.weight_scale_inv", "[1, 4]", "expected [2, 2]");
}

TEST(ModelLoad, Fp8WeightWithoutScale) {
  TempModel m("tiny-v3-fp8", [](TensorMap& t) { t.erase("model.layers.1.self_attn.o_proj.weight_scale_inv"); });
  EXPECT_LOAD_ERROR(m, "model.layers.1.self_attn.o_proj.weight", "F8_E4M3", "block scale");
}

TEST(ModelLoad, ScaleOnBf16Weight) {
  TempModel m("tiny-v3", [](TensorMap& t) {
    t["model.layers.0.self_attn.o_proj.weight_scale_inv"] = {"F32", {1, 1}, std::string(4, '\0')};
  });
  EXPECT_LOAD_ERROR(m, "o_proj.weight", "expected F8_E4M3");
}

TEST(ModelLoad, PartialMtpLayerIsAnError) {
  TempModel m("tiny-v3", [](TensorMap& t) { t.erase("model.layers.3.eh_proj.weight"); });
  EXPECT_LOAD_ERROR(m, "missing tensor", "model.layers.3.eh_proj.weight");
}

TEST(ModelLoad, AbsentMtpLayerLoadsWithoutMtp) {
  TempModel m("tiny-v3", [](TensorMap& t) {
    for (auto it = t.begin(); it != t.end();) it = it->first.rfind("model.layers.3.", 0) == 0 ? t.erase(it) : std::next(it);
  });
  auto e = rt::Engine::load(m.dir.string(), rt::EngineOptions{});
  EXPECT_FALSE(e->model().has_mtp());
}

TEST(ModelLoad, ConfigErrorsNameTheField) {
  struct C { std::function<void(json&)> edit; const char* field; };
  const std::vector<C> cases = {
      {[](json& c) { c.erase("hidden_size"); }, "hidden_size"},
      {[](json& c) { c["hidden_size"] = "128"; }, "hidden_size"},
      {[](json& c) { c["num_attention_heads"] = 0; }, "num_attention_heads"},
      {[](json& c) { c["n_group"] = 3; }, "n_group"},
      {[](json& c) { c["topk_group"] = 9; }, "topk_group"},
      {[](json& c) { c["num_experts_per_tok"] = 17; }, "num_experts_per_tok"},
      {[](json& c) { c["qk_rope_head_dim"] = 7; }, "qk_rope_head_dim"},
      {[](json& c) { c["model_type"] = "mistral"; }, "model_type"},
      {[](json& c) { c["topk_method"] = "mystery"; }, "topk_method"},
      {[](json& c) { c["rope_scaling"]["type"] = "dynamic"; }, "rope_scaling"},
      {[](json& c) { c["vocab_size"] = -5; }, "vocab_size"},
      {[](json& c) { c["num_hidden_layers"] = 1e30; }, "num_hidden_layers"},
      {[](json& c) { c["q_lora_rank"] = 32; }, "q_a_proj"},  // consistent config, tensors no longer fit
  };
  for (const auto& c : cases) {
    TempModel m("tiny-v3", nullptr, c.edit);
    EXPECT_LOAD_ERROR(m, c.field);
  }
}

TEST(ModelLoad, TruncatedFileIsAnError) {
  TempModel m("tiny-v2-lite", nullptr);
  const auto p = m.dir / "model.safetensors";
  const auto size = fs::file_size(p);
  for (uintmax_t cut : {uintmax_t(0), uintmax_t(7), uintmax_t(100), size / 2, size - 1}) {
    fs::resize_file(p, cut);
    const std::string err = load_error(m);
    EXPECT_NE(err.find("model.safetensors"), std::string::npos) << "truncated at " << cut << ": " << err;
  }
}

TEST(ModelLoad, MissingFolderAndConfig) {
  EXPECT_TRUE(throws_with([] { rt::Engine::load("/nonexistent/model", rt::EngineOptions{}); }, {"/nonexistent/model"}));
  TempModel m("tiny-v3", nullptr);
  fs::remove(m.dir / "config.json");
  EXPECT_LOAD_ERROR(m, "config.json");
}

}  // namespace
}  // namespace ds::test
