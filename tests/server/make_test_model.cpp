// SPDX-License-Identifier: MIT
// Writes the server tests' model: a random-weight DeepSeek-V3 (vocab 129280, hidden 64, 2 layers, one dense and one
// MoE layer with 4 experts) as a Hugging Face folder with the real DeepSeek-V3 tokenizer files. Three folders:
//   OUT/v3     the V3 chat template (from tokenizer_config.json)
//   OUT/r1     the same weights with the R1 template, whose generation prompt ends in "<think>\n" (reasoning tests)
//   OUT/tools  a scripted model: the same shapes with weights built so that greedy decoding, after the V3
//              template's "<｜Assistant｜>", emits a tool call in DeepSeek's tokens (kToolScript) and then
//              end-of-sentence. Every attention output and FFN down projection is zero, so the final hidden state
//              is the current token's embedding; lm_head row succ(t) is that embedding (scaled), every other row
//              zero, so the argmax is succ(t) by a wide margin. The engine runs its real forward, sampling,
//              detokenizer and tool-call parser over it: what a model that calls a tool produces, end to end.
//   OUT/qwen2  a dense R1-Distill-Qwen-shaped model (qwen2: grouped-query attention 4 q / 2 kv heads with q/k/v
//              biases, dense MLP) with the same tokenizer and the R1 template: the server over K/V rows.
//   OUT/v32    the V3 shapes as DeepSeek-V3.2 (deepseek_v32: a lightning indexer of 2 heads x 16 choosing 8 positions,
//              so short prompts already attend sparsely; an MTP layer, so the server speculates by default) and no
//              Jinja template (DeepSeek-V3.2 ships its Python encoder instead).
//   OUT/qwen3-tools  the qwen2 shapes with the Qwen3 tokenizer (vocab 151936) and Qwen3's template, which renders
//              `tools` itself, scripted like OUT/tools: after a non-thinking generation prompt ("</think>\n\n") it
//              emits a Hermes-style call (kHermesScript) and <|im_end|>.
// usage: make_test_model TOKENIZER_DIR TEMPLATES_DIR OUT QWEN3_TOKENIZER_DIR
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <sstream>

#include <nlohmann/json.hpp>

#include "base/dtype.h"
#include "io/config.h"
#include "io/json_util.h"
#include "model/random_weights.h"
#include "tokenizer/tokenizer.h"

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

// The same vocabulary and width as test_config, as a Qwen2 (R1-Distill-Qwen) model.
static json dense_config() {
  return json{{"architectures", {"Qwen2ForCausalLM"}},
              {"model_type", "qwen2"},
              {"bos_token_id", 0},
              {"eos_token_id", 1},
              {"hidden_act", "silu"},
              {"rms_norm_eps", 1e-6},
              {"rope_theta", 10000.0},
              {"tie_word_embeddings", false},
              {"use_sliding_window", false},
              {"torch_dtype", "bfloat16"},
              {"vocab_size", 129280},
              {"hidden_size", 64},
              {"intermediate_size", 128},
              {"num_hidden_layers", 2},
              {"num_attention_heads", 4},
              {"num_key_value_heads", 2},
              {"max_position_embeddings", 4096}};
}

static void write_file(const fs::path& p, const std::string& s) {
  std::ofstream f(p, std::ios::binary);
  f << s;
  if (!f) throw std::runtime_error("cannot write " + p.string());
}

// The tool call the scripted model makes (V3.1 spelling, which the server parses for every template).
static const char* const kToolScript =
    "<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>get_weather<｜tool▁sep｜>{\"city\": \"Oslo\"}<｜tool▁call▁end｜>"
    "<｜tool▁calls▁end｜><｜end▁of▁sentence｜>";

// The Qwen3 model's call: compact JSON where the tokens would repeat (":" and ", " would), so every token differs.
static const char* const kHermesScript =
    "<tool_call>\n{\"name\":\"get_weather\",\"arguments\":{\"city\": \"Oslo\"}}\n</tool_call><|im_end|>";

// succ[t] = the token the scripted model emits after t (the chain starts at the last token of `after`); every token
// of the chain must be distinct.
static std::map<int32_t, int32_t> tool_script(const fs::path& tok_dir, const std::string& after, const char* script) {
  const auto tk = ds::tok::Tokenizer::from_dir(tok_dir.string());
  std::vector<int32_t> chain = {tk.encode(after, true).back()};
  const auto ids = tk.encode(script, true);
  chain.insert(chain.end(), ids.begin(), ids.end());
  std::map<int32_t, int32_t> succ;
  for (size_t i = 0; i + 1 < chain.size(); ++i)
    if (!succ.emplace(chain[i], chain[i + 1]).second)
      throw std::runtime_error("the tool script repeats token " + std::to_string(chain[i]));
  return succ;
}

// Rewrites the random weights in place into the scripted model described at the top of this file.
static void script_weights(std::vector<std::pair<std::string, ds::model::RawTensor>>& ts, const json& cfg,
                           const std::map<int32_t, int32_t>& succ, std::vector<std::vector<uint16_t>>& keep) {
  const int64_t D = cfg["hidden_size"].get<int64_t>();
  const uint16_t* embed = nullptr;
  for (auto& [name, t] : ts)
    if (name == "model.embed_tokens.weight") embed = static_cast<const uint16_t*>(t.data);
  if (!embed) throw std::runtime_error("no embedding");
  auto ends_with = [](const std::string& s, const std::string& e) {
    return s.size() >= e.size() && s.compare(s.size() - e.size(), e.size(), e) == 0;
  };
  for (auto& [name, t] : ts) {
    const bool zero = ends_with(name, "o_proj.weight") || ends_with(name, "down_proj.weight");
    const bool head = name == "lm_head.weight";
    if (!zero && !head) continue;
    if (t.dtype != ds::DType::BF16) throw std::runtime_error(name + ": expected bf16");
    size_t n = 1;
    for (auto d : t.shape) n *= size_t(d);
    keep.emplace_back(n, uint16_t(0));
    std::vector<uint16_t>& w = keep.back();
    if (head)
      for (const auto& [from, to] : succ) {
        // Row `to` = embedding of `from` / its RMS (the final norm's output for `from`), times 4: logit 4 * D.
        double ss = 0;
        for (int64_t d = 0; d < D; ++d) ss += std::pow(ds::bf16_to_f32(embed[from * D + d]), 2);
        const double inv = 4.0 / std::sqrt(ss / double(D));
        for (int64_t d = 0; d < D; ++d)
          w[size_t(to * D + d)] = ds::f32_to_bf16(float(ds::bf16_to_f32(embed[from * D + d]) * inv));
      }
    t.data = w.data();
  }
}

// The test model as DeepSeek-V3.2 (see the top of the file).
static json v32_config() {
  json c = test_config();
  c["architectures"] = {"DeepseekV32ForCausalLM"};
  c["model_type"] = "deepseek_v32";
  c["index_n_heads"] = 2;
  c["index_head_dim"] = 16;
  c["index_topk"] = 8;
  c["num_nextn_predict_layers"] = 1;
  return c;
}

// chat_template: replaces the tokenizer's; "" keeps it; kNoTemplate removes it.
const std::string kNoTemplate = "\x01none";

static void write_model(const fs::path& dir, const json& cfg_json, const std::string& chat_template,
                        const fs::path& tok_dir, const std::map<int32_t, int32_t>* script = nullptr) {
  fs::create_directories(dir);
  write_file(dir / "config.json", cfg_json.dump(2));
  write_file(dir / "generation_config.json", json{{"bos_token_id", cfg_json["bos_token_id"]},
                                                  {"eos_token_id", cfg_json["eos_token_id"]}, {"temperature", 0.6},
                                                  {"top_p", 0.95}}.dump(2));
  fs::copy_file(tok_dir / "tokenizer.json", dir / "tokenizer.json", fs::copy_options::overwrite_existing);
  json tc = ds::io::read_json_file((tok_dir / "tokenizer_config.json").string());
  if (chat_template == kNoTemplate) tc.erase("chat_template");
  else if (!chat_template.empty()) tc["chat_template"] = chat_template;
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
  std::vector<std::vector<uint16_t>> scripted;
  if (script) script_weights(ts, cfg_json, *script, scripted);
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

static std::string read_text(const fs::path& p) {
  std::ifstream f(p);
  std::stringstream ss;
  ss << f.rdbuf();
  if (ss.str().empty()) throw std::runtime_error("cannot read " + p.string());
  return ss.str();
}

int main(int argc, char** argv) {
  if (argc != 5) {
    std::fprintf(stderr, "usage: make_test_model TOKENIZER_DIR TEMPLATES_DIR OUT QWEN3_TOKENIZER_DIR\n");
    return 2;
  }
  try {
    const fs::path tok = argv[1], tmpl = argv[2], out = argv[3], qwen3_tok = argv[4];
    const json cfg = test_config();
    json qwen3_cfg = dense_config();
    qwen3_cfg["vocab_size"] = 151936;
    qwen3_cfg["bos_token_id"] = 151643;
    qwen3_cfg["eos_token_id"] = 151645;
    const std::string stamp =
        cfg.dump() + dense_config().dump() + kToolScript + qwen3_cfg.dump() + kHermesScript + v32_config().dump();
    if (fs::exists(out / "v3" / "model.safetensors") && fs::exists(out / "r1" / "model.safetensors") &&
        fs::exists(out / "tools" / "model.safetensors") && fs::exists(out / "qwen2" / "model.safetensors") &&
        fs::exists(out / "qwen3-tools" / "model.safetensors") && fs::exists(out / "v32" / "model.safetensors") &&
        fs::exists(out / "stamp")) {
      std::ifstream s(out / "stamp");
      std::stringstream ss;
      ss << s.rdbuf();
      if (ss.str() == stamp) return 0;
    }
    write_model(out / "v3", cfg, "", tok);
    const std::string r1 = read_text(tmpl / "deepseek-r1.jinja");
    write_model(out / "r1", cfg, r1, tok);
    const auto succ = tool_script(tok, "<｜Assistant｜>", kToolScript);
    write_model(out / "tools", cfg, "", tok, &succ);
    write_model(out / "qwen2", dense_config(), r1, tok);
    write_model(out / "v32", v32_config(), kNoTemplate, tok);
    const auto hermes = tool_script(qwen3_tok, "</think>\n\n", kHermesScript);
    write_model(out / "qwen3-tools", qwen3_cfg, read_text(tmpl / "qwen3.jinja"), qwen3_tok, &hermes);
    write_file(out / "stamp", stamp);
    std::printf("make_test_model: %s ready\n", out.c_str());
  } catch (const std::exception& e) {
    std::fprintf(stderr, "make_test_model: %s\n", e.what());
    return 1;
  }
  return 0;
}
