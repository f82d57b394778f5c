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
#include "io/config.h"
#include "model/weights.h"
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

// A checkpoint without kv_b_proj's per-head halves gets them at load (model/weights.cpp, derive_mla_halves):
// element for element kv_b_proj's, FP8 scales included. The fixture's scale grids are replaced by grids of B x B
// blocks with a distinct scale per block, so a half that took a wrong block's scale shows. Where kv_b_proj's blocks
// do not map onto whole blocks of a half (B = 24: a head's 64 rows do not start on block edges), none are made.
struct Halves {
  io::ModelConfig cfg;
  std::unique_ptr<io::Checkpoint> ck;
  std::map<std::string, std::vector<float>> grids;
  model::Weights w;
  Halves(const std::string& fixture, int64_t B) {
    cfg = io::load_config(fixture_dir(fixture) + "/config.json");
    ck = io::Checkpoint::open(fixture_dir(fixture));
    const std::string suffix = "_scale_inv";
    if (B > 0) {
      cfg.weight_block_rows = cfg.weight_block_cols = B;
      for (const auto& n : ck->names()) {
        if (n.size() <= suffix.size() || n.compare(n.size() - suffix.size(), suffix.size(), suffix) != 0) continue;
        const io::TensorInfo* t = ck->find(n.substr(0, n.size() - suffix.size()));
        const int64_t gr = (t->shape[0] + B - 1) / B, gc = (t->shape[1] + B - 1) / B;
        std::vector<float> g(size_t(gr * gc));
        for (size_t i = 0; i < g.size(); ++i) g[i] = 0.5f + 0.25f * float(i);
        grids[n] = std::move(g);
      }
    }
    model::TensorLookup lookup = [this](const std::string& name, model::RawTensor* out) {
      if (auto it = grids.find(name); it != grids.end()) {
        const io::TensorInfo* t = ck->find(name.substr(0, name.size() - 10));
        const int64_t B = cfg.weight_block_rows;
        *out = {it->second.data(), DType::F32, {(t->shape[0] + B - 1) / B, (t->shape[1] + B - 1) / B}};
        return true;
      }
      const io::TensorInfo* t = ck->find(name);
      if (!t) return false;
      *out = {t->data, t->dtype, t->shape};
      return true;
    };
    w = model::bind_weights(cfg, lookup, ck->names(), fixture);
  }
  // Every element of both halves of every layer (MTP included) against kv_b_proj's.
  void expect_equal() const {
    const int64_t H = cfg.num_attention_heads, nope = cfg.qk_nope_head_dim, dv = cfg.v_head_dim, r = cfg.kv_lora_rank;
    int64_t mismatches = 0;
    for (const model::LayerWeights& L : w.layers) {
      ASSERT_NE(L.k_b_proj.data, nullptr);
      ASSERT_NE(L.v_b_proj.data, nullptr);
      EXPECT_EQ(L.k_b_proj.dtype, L.kv_b_proj.dtype);
      EXPECT_EQ(L.k_b_proj.scale != nullptr, L.kv_b_proj.scale != nullptr);
      for (int64_t h = 0; h < H; ++h)
        for (int64_t j = 0; j < r; ++j) {
          for (int64_t k = 0; k < nope; ++k)
            mismatches += L.k_b_proj.at(h * r + j, k) != L.kv_b_proj.at(h * (nope + dv) + k, j);
          for (int64_t i = 0; i < dv; ++i)
            mismatches += L.v_b_proj.at(h * dv + i, j) != L.kv_b_proj.at(h * (nope + dv) + nope + i, j);
        }
    }
    EXPECT_EQ(mismatches, 0);
  }
};

TEST(ModelLoad, MlaHalvesMadeFromKvB) {
  Halves bf16("tiny-v3", 0);
  EXPECT_EQ(bf16.w.n_mtp, 1);  // the MTP layer's halves too
  EXPECT_EQ(int64_t(bf16.w.layers.size()), bf16.cfg.num_hidden_layers + 1);
  bf16.expect_equal();
  Halves fp8("tiny-v3-fp8", 0);  // the checkpoint's own 128 x 128 grid: one block per kv_b_proj
  fp8.expect_equal();
  for (int64_t B : {16, 32}) {
    Halves h("tiny-v3-fp8", B);
    ASSERT_GT(h.w.layers[0].kv_b_proj.scale_cols, 1) << B;  // several blocks each way
    h.expect_equal();
  }
}

TEST(ModelLoad, MlaHalvesNotMadeAcrossBlockEdges) {
  Halves h("tiny-v3-fp8", 24);
  for (const model::LayerWeights& L : h.w.layers) EXPECT_EQ(L.k_b_proj.data, nullptr);
  EXPECT_TRUE(h.w.derived.empty());
}

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
