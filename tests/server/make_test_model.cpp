// SPDX-License-Identifier: MIT
// Writes the server tests' model: a random-weight DeepSeek-V3 (vocab 129280, hidden 64, 2 layers, one dense and one
// MoE layer with 4 experts) as a Hugging Face folder with the real DeepSeek-V3 tokenizer files. Two folders:
//   OUT/v3  the V3 chat template (from tokenizer_config.json)
//   OUT/r1  the same weights with the R1 template, whose generation prompt ends in "<think>\n" (reasoning tests)
// usage: make_test_model TOKENIZER_DIR TEMPLATES_DIR OUT
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "base/dtype.h"
#include "io/config.h"
#include "io/json_util.h"
#include "model/random_weights.h"

namespace fs = std::filesystem;
using nlohmann::json;

static json test_config() {
  return json{{"architectures", {"DeepseekV3ForCausalLM"}},
              {"model_type", "deepseek_v3"},
              {"bos_token_id", 0},
              {"eos_token_id", 1},
              {"hidden_act", "silu"},
              {"rms_norm_eps", 1e-6},
              {"rope_theta", 10000.0},
              {"tie_word_embeddings", false},
              {"torch_dtype", "bfloat16"},
              {"vocab_size", 129280},
              {"hidden_size", 64},
              {"intermediate_size", 128},
              {"moe_intermediate_size", 32},
              {"num_hidden_layers", 2},
              {"first_k_dense_replace", 1},
              {"moe_layer_freq", 1},
              {"num_attention_heads", 2},
              {"num_key_value_heads", 2},
              {"q_lora_rank", 32},
              {"kv_lora_rank", 32},
              {"qk_nope_head_dim", 16},
              {"qk_rope_head_dim", 8},
              {"v_head_dim", 16},
              {"n_routed_experts", 4},
              {"n_shared_experts", 1},
              {"num_experts_per_tok", 2},
              {"n_group", 1},
              {"topk_group", 1},
              {"routed_scaling_factor", 2.5},
              {"norm_topk_prob", true},
              {"scoring_func", "sigmoid"},
              {"topk_method", "noaux_tc"},
              {"max_position_embeddings", 4096},
              {"num_nextn_predict_layers", 0}};
}

static void write_file(const fs::path& p, const std::string& s) {
  std::ofstream f(p, std::ios::binary);
  f << s;
  if (!f) throw std::runtime_error("cannot write " + p.string());
}

static void write_model(const fs::path& dir, const json& cfg_json, const std::string& chat_template,
                        const fs::path& tok_dir) {
  fs::create_directories(dir);
  write_file(dir / "config.json", cfg_json.dump(2));
  write_file(dir / "generation_config.json", json{{"bos_token_id", 0}, {"eos_token_id", 1}, {"temperature", 0.6},
                                                  {"top_p", 0.95}}.dump(2));
  fs::copy_file(tok_dir / "tokenizer.json", dir / "tokenizer.json", fs::copy_options::overwrite_existing);
  json tc = ds::io::read_json_file((tok_dir / "tokenizer_config.json").string());
  if (!chat_template.empty()) tc["chat_template"] = chat_template;
  write_file(dir / "tokenizer_config.json", tc.dump(2));

  const ds::io::ModelConfig cfg = ds::io::parse_config(cfg_json, (dir / "config.json").string());
  ds::model::RandomWeights w(cfg, ds::DType::BF16, 7);
  auto lookup = w.lookup();
  json header = json::object();
  uint64_t off = 0;
  std::vector<std::pair<std::string, ds::model::RawTensor>> ts;
  for (const auto& name : w.names()) {
    ds::model::RawTensor t;
    if (!lookup(name, &t)) throw std::runtime_error("missing " + name);
    uint64_t n = 1;
    for (auto d : t.shape) n *= uint64_t(d);
    const uint64_t bytes = n * uint64_t(ds::dtype_size(t.dtype));
    header[name] = {{"dtype", std::string(ds::dtype_name(t.dtype))}, {"shape", t.shape}, {"data_offsets", {off, off + bytes}}};
    off += bytes;
    ts.emplace_back(name, t);
  }
  std::string h = header.dump();
  while ((h.size() + 8) % 8) h += ' ';
  std::ofstream f(dir / "model.safetensors", std::ios::binary);
  const uint64_t hl = h.size();
  f.write(reinterpret_cast<const char*>(&hl), 8);
  f.write(h.data(), std::streamsize(h.size()));
  for (const auto& [name, t] : ts) {
    uint64_t n = 1;
    for (auto d : t.shape) n *= uint64_t(d);
    f.write(static_cast<const char*>(t.data), std::streamsize(n * uint64_t(ds::dtype_size(t.dtype))));
  }
  if (!f) throw std::runtime_error("cannot write safetensors");
}

int main(int argc, char** argv) {
  if (argc != 4) {
    std::fprintf(stderr, "usage: make_test_model TOKENIZER_DIR TEMPLATES_DIR OUT\n");
    return 2;
  }
  try {
    const fs::path tok = argv[1], tmpl = argv[2], out = argv[3];
    const json cfg = test_config();
    if (fs::exists(out / "v3" / "model.safetensors") && fs::exists(out / "r1" / "model.safetensors") &&
        fs::exists(out / "stamp") ) {
      std::ifstream s(out / "stamp");
      std::stringstream ss;
      ss << s.rdbuf();
      if (ss.str() == cfg.dump()) return 0;
    }
    write_model(out / "v3", cfg, "", tok);
    std::ifstream r1(tmpl / "deepseek-r1.jinja");
    std::stringstream r1s;
    r1s << r1.rdbuf();
    if (r1s.str().empty()) throw std::runtime_error("no deepseek-r1.jinja in " + tmpl.string());
    write_model(out / "r1", cfg, r1s.str(), tok);
    write_file(out / "stamp", cfg.dump());
    std::printf("make_test_model: %s ready\n", out.c_str());
  } catch (const std::exception& e) {
    std::fprintf(stderr, "make_test_model: %s\n", e.what());
    return 1;
  }
  return 0;
}
