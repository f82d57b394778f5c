// SPDX-License-Identifier: MIT
// config.json parsing for deepseek_v2 / deepseek_v3: field names as in the file, the reference's defaults for
// optional fields, and validation that turns nonsense (zero heads, n_group not dividing experts...) into errors.
#include "io/config.h"

#include <cmath>
#include <sstream>

#include "base/error.h"

namespace ds::io {

namespace {

class Reader {
 public:
  Reader(const Json& j, const std::string& src) : j_(j), src_(src) {}

  bool has(const char* k) const { return j_.contains(k) && !j_[k].is_null(); }

  int64_t integer(const char* k) const {
    DS_CHECK(j_.contains(k), src_, ": missing required field '", k, "'");
    return as_int(j_[k], k);
  }
  int64_t integer(const char* k, int64_t def) const { return has(k) ? as_int(j_[k], k) : def; }
  double number(const char* k, double def) const {
    if (!has(k)) return def;
    DS_CHECK(j_[k].is_number(), src_, ": field '", k, "' must be a number, got ", j_[k].type_name());
    return j_[k].get<double>();
  }
  bool boolean(const char* k, bool def) const {
    if (!has(k)) return def;
    DS_CHECK(j_[k].is_boolean(), src_, ": field '", k, "' must be true or false, got ", j_[k].type_name());
    return j_[k].get<bool>();
  }
  std::string string(const char* k, const std::string& def) const {
    if (!has(k)) return def;
    DS_CHECK(j_[k].is_string(), src_, ": field '", k, "' must be a string, got ", j_[k].type_name());
    return j_[k].get<std::string>();
  }
  int64_t as_int(const Json& v, const char* k) const {
    if (v.is_number_integer()) return v.get<int64_t>();
    // Some exporters write 16.0 for integer fields; accept exact integral floats only.
    if (v.is_number_float()) {
      const double d = v.get<double>();
      DS_CHECK(std::isfinite(d) && d == std::floor(d) && std::fabs(d) < 9.0e15, src_, ": field '", k,
               "' must be an integer, got ", d);
      return int64_t(d);
    }
    fail(src_, ": field '", k, "' must be an integer, got ", v.type_name());
  }
  const std::string& src() const { return src_; }

 private:
  const Json& j_;
  const std::string& src_;
};

void check_range(const std::string& src, const char* field, int64_t v, int64_t lo, int64_t hi) {
  DS_CHECK(v >= lo && v <= hi, src, ": field '", field, "' = ", v, " is out of range [", lo, ", ", hi, "]");
}

RopeScaling parse_rope_scaling(const Json& rs, const std::string& src) {
  RopeScaling r;
  if (rs.is_null()) return r;
  DS_CHECK(rs.is_object(), src, ": 'rope_scaling' must be an object or null");
  Reader rd(rs, src);
  const std::string type = rd.has("type") ? rd.string("type", "") : rd.string("rope_type", "default");
  if (type == "default" || type.empty()) return r;
  r.factor = rd.number("factor", 1.0);
  DS_CHECK(r.factor >= 1.0 && r.factor <= 1e6, src, ": rope_scaling.factor = ", r.factor, " must be in [1, 1e6]");
  if (type == "linear") {
    r.type = RopeType::Linear;
    return r;
  }
  r.original_max_position_embeddings = rd.integer("original_max_position_embeddings", 4096);
  DS_CHECK(r.original_max_position_embeddings > 0, src, ": rope_scaling.original_max_position_embeddings must be > 0");
  if (type == "llama3") {
    r.type = RopeType::Llama3;
    r.low_freq_factor = rd.number("low_freq_factor", 1.0);
    r.high_freq_factor = rd.number("high_freq_factor", 4.0);
    DS_CHECK(r.low_freq_factor > 0 && r.high_freq_factor > r.low_freq_factor, src,
             ": rope_scaling low_freq_factor = ", r.low_freq_factor, ", high_freq_factor = ", r.high_freq_factor,
             " (need 0 < low < high)");
    return r;
  }
  DS_CHECK(type == "yarn", src, ": rope_scaling type '", type,
           "' is not supported (expected yarn, llama3, linear, default or none)");
  r.type = RopeType::Yarn;
  r.beta_fast = rd.number("beta_fast", 32.0);
  r.beta_slow = rd.number("beta_slow", 1.0);
  r.mscale = rd.number("mscale", 1.0);
  r.mscale_all_dim = rd.number("mscale_all_dim", 0.0);
  r.attention_factor = rd.number("attention_factor", 0.0);
  r.attn_factor = rd.number("attn_factor", 0.0);
  DS_CHECK(r.beta_fast > 0 && r.beta_slow > 0, src, ": rope_scaling beta_fast/beta_slow must be > 0");
  DS_CHECK(r.attention_factor >= 0 && r.attn_factor >= 0 && r.attn_factor < 100, src,
           ": rope_scaling attention_factor / attn_factor must be positive");
  return r;
}

// The grouped-query families (qwen2, llama, qwen3): their attention fields, as each transformers class reads them.
void parse_dense(const Json& j, const Reader& rd, ModelConfig& c) {
  const std::string& src = rd.src();
  const bool qwen2 = c.model_type == "qwen2", qwen3 = c.model_type == "qwen3";
  // Qwen3's class default is 128, not hidden / heads; Qwen2 and Llama derive it when the file has none.
  c.head_dim = qwen3 ? rd.integer("head_dim", 128)
                     : rd.integer("head_dim", c.num_attention_heads > 0 ? c.hidden_size / c.num_attention_heads : 0);
  const bool bias = rd.boolean("attention_bias", false);
  c.qkv_bias = qwen2 || bias;  // Qwen2's q/k/v always carry biases, its o_proj never
  c.o_bias = !qwen2 && bias;
  c.qk_norm = qwen3;
  DS_CHECK(!rd.boolean("mlp_bias", false), src, ": mlp_bias = true is not supported");
  if (rd.boolean("use_sliding_window", false))
    fail(src, ": use_sliding_window = true is not supported (sliding-window attention; the R1 distills leave it off)");
  check_range(src, "num_key_value_heads", c.num_key_value_heads, 1, c.num_attention_heads);
  DS_CHECK(c.num_attention_heads % c.num_key_value_heads == 0, src, ": num_attention_heads = ", c.num_attention_heads,
           " is not a multiple of num_key_value_heads = ", c.num_key_value_heads);
  check_range(src, "head_dim", c.head_dim, 2, 1 << 12);
  DS_CHECK(c.head_dim % 2 == 0, src, ": head_dim = ", c.head_dim, " must be even (RoPE pairs)");
  (void)j;
}

}  // namespace

namespace {
// Checks every family shares: the dimensions the engine sizes buffers with are bounded.
ModelConfig validate(ModelConfig& c, const std::string& src) {
  check_range(src, "vocab_size", c.vocab_size, 1, 1 << 22);
  check_range(src, "hidden_size", c.hidden_size, 1, 1 << 16);
  check_range(src, "intermediate_size", c.intermediate_size, 1, 1 << 20);
  check_range(src, "num_hidden_layers", c.num_hidden_layers, 1, 4096);
  check_range(src, "num_attention_heads", c.num_attention_heads, 1, 4096);
  check_range(src, "max_position_embeddings", c.max_position_embeddings, 1, int64_t(1) << 24);
  DS_CHECK(c.rms_norm_eps > 0 && c.rms_norm_eps < 1, src, ": rms_norm_eps = ", c.rms_norm_eps, " must be in (0, 1)");
  DS_CHECK(c.rope_theta > 1, src, ": rope_theta = ", c.rope_theta, " must be > 1");
  DS_CHECK(c.hidden_act == "silu", src, ": hidden_act '", c.hidden_act, "' is not supported (expected silu)");
  for (int64_t e : c.eos_token_ids) check_range(src, "eos_token_id", e, 0, c.vocab_size - 1);
  return c;
}
}  // namespace

bool ModelConfig::is_moe_layer(int64_t layer) const {
  // Remote code / vLLM / SGLang: MoE iff experts exist, past the dense prefix, and on the moe_layer_freq grid.
  return n_routed_experts > 0 && layer >= first_k_dense_replace && layer % moe_layer_freq == 0;
}

ModelConfig parse_config(const Json& j, const std::string& src) {
  DS_CHECK(j.is_object(), src, ": top level must be a JSON object");
  Reader rd(j, src);
  ModelConfig c;
  c.model_type = rd.string("model_type", "");
  const bool dense = c.model_type == "qwen2" || c.model_type == "llama" || c.model_type == "qwen3";
  DS_CHECK(dense || c.model_type == "deepseek_v2" || c.model_type == "deepseek_v3" || c.model_type == "deepseek_v32" ||
               c.model_type == "kimi_k2",
           src, ": model_type '", c.model_type,
           "' is not supported (expected deepseek_v2, deepseek_v3, deepseek_v32, kimi_k2, qwen2, llama or qwen3)");
  const bool v3 = c.model_type != "deepseek_v2";
  if (j.contains("architectures") && j["architectures"].is_array())
    for (const auto& a : j["architectures"]) if (a.is_string()) c.architectures.push_back(a.get<std::string>());

  c.vocab_size = rd.integer("vocab_size");
  c.hidden_size = rd.integer("hidden_size");
  c.intermediate_size = rd.integer("intermediate_size");
  c.num_hidden_layers = rd.integer("num_hidden_layers");
  c.num_attention_heads = rd.integer("num_attention_heads");
  c.num_key_value_heads = rd.integer("num_key_value_heads", c.num_attention_heads);
  c.rms_norm_eps = rd.number("rms_norm_eps", 1e-6);
  c.hidden_act = rd.string("hidden_act", "silu");
  c.tie_word_embeddings = rd.boolean("tie_word_embeddings", false);
  c.bos_token_id = rd.integer("bos_token_id", -1);
  if (rd.has("eos_token_id")) {
    const Json& e = j["eos_token_id"];
    if (e.is_array()) for (const auto& x : e) c.eos_token_ids.push_back(rd.as_int(x, "eos_token_id"));
    else c.eos_token_ids.push_back(rd.as_int(e, "eos_token_id"));
  }
  const Json* rs = nullptr;
  if (j.contains("rope_scaling")) rs = &j["rope_scaling"];
  else if (j.contains("rope_parameters")) rs = &j["rope_parameters"];  // transformers v5 spelling
  c.rope_theta = rd.number("rope_theta", (rs && rs->is_object() && rs->contains("rope_theta") &&
                                          (*rs)["rope_theta"].is_number()) ? (*rs)["rope_theta"].get<double>() : 10000.0);
  if (rs) c.rope_scaling = parse_rope_scaling(*rs, src);
  if (dense) {
    c.max_position_embeddings = rd.integer("max_position_embeddings", c.model_type == "llama" ? 2048 : 32768);
    parse_dense(j, rd, c);
    return validate(c, src);
  }
  c.kv_lora_rank = rd.integer("kv_lora_rank");
  c.qk_nope_head_dim = rd.integer("qk_nope_head_dim");
  c.qk_rope_head_dim = rd.integer("qk_rope_head_dim");
  c.v_head_dim = rd.integer("v_head_dim");
  c.q_lora_rank = rd.integer("q_lora_rank", 0);  // null: direct q_proj (V2-Lite)

  c.n_routed_experts = rd.integer("n_routed_experts", 0);
  c.moe_intermediate_size = rd.integer("moe_intermediate_size", v3 ? 2048 : 1407);
  c.n_shared_experts = rd.integer("n_shared_experts", 0);
  c.num_experts_per_tok = rd.integer("num_experts_per_tok", 0);
  c.n_group = rd.integer("n_group", 1);
  c.topk_group = rd.integer("topk_group", 1);
  c.first_k_dense_replace = rd.integer("first_k_dense_replace", 0);
  c.moe_layer_freq = rd.integer("moe_layer_freq", 1);
  c.routed_scaling_factor = rd.number("routed_scaling_factor", v3 ? 2.5 : 1.0);
  c.norm_topk_prob = rd.boolean("norm_topk_prob", v3);
  const std::string scoring = rd.string("scoring_func", v3 ? "sigmoid" : "softmax");
  if (scoring == "softmax") c.scoring_func = ScoringFunc::Softmax;
  else if (scoring == "sigmoid") c.scoring_func = ScoringFunc::Sigmoid;
  else fail(src, ": scoring_func '", scoring, "' is not supported (expected softmax or sigmoid)");
  const std::string method = rd.string("topk_method", v3 ? "noaux_tc" : "greedy");
  // The V2 remote code spells greedy "gready" in some copies: key on intent.
  if (method == "greedy" || method == "gready") c.topk_method = TopkMethod::Greedy;
  else if (method == "group_limited_greedy") c.topk_method = TopkMethod::GroupLimitedGreedy;
  else if (method == "noaux_tc") c.topk_method = TopkMethod::NoauxTc;
  else fail(src, ": topk_method '", method, "' is not supported (expected greedy, group_limited_greedy or noaux_tc)");
  c.num_nextn_predict_layers = rd.integer("num_nextn_predict_layers", 0);

  c.max_position_embeddings = rd.integer("max_position_embeddings", v3 ? 4096 : 2048);
  c.attention_bias = rd.boolean("attention_bias", false);
  if (c.model_type == "deepseek_v32") {  // DeepSeek Sparse Attention: the lightning indexer (deepseek_spec.md §2.5)
    c.index_n_heads = rd.integer("index_n_heads", 64);
    c.index_head_dim = rd.integer("index_head_dim", 128);
    c.index_topk = rd.integer("index_topk", 2048);
  }

  if (rd.has("quantization_config")) {
    const Json& q = j["quantization_config"];
    DS_CHECK(q.is_object(), src, ": 'quantization_config' must be an object");
    Reader qr(q, src);
    const std::string qm = qr.string("quant_method", "");
    DS_CHECK(qm == "fp8", src, ": quantization_config.quant_method '", qm, "' is not supported (expected fp8)");
    c.fp8 = true;
    if (q.contains("weight_block_size")) {
      const Json& b = q["weight_block_size"];
      DS_CHECK(b.is_array() && b.size() == 2 && b[0].is_number_integer() && b[1].is_number_integer(), src,
               ": quantization_config.weight_block_size must be [rows, cols]");
      c.weight_block_rows = b[0].get<int64_t>();
      c.weight_block_cols = b[1].get<int64_t>();
      check_range(src, "weight_block_size[0]", c.weight_block_rows, 1, 1 << 16);
      check_range(src, "weight_block_size[1]", c.weight_block_cols, 1, 1 << 16);
    }
    c.scale_ue8m0 = qr.string("scale_fmt", "") == "ue8m0";
  }

  // Validation: every dimension the engine sizes buffers with is bounded, and the routing arithmetic is sound.
  // The layer count first: the MoE ranges below are relative to it, and a bad count must be named as such.
  check_range(src, "num_hidden_layers", c.num_hidden_layers, 1, 4096);
  check_range(src, "kv_lora_rank", c.kv_lora_rank, 1, 1 << 16);
  check_range(src, "q_lora_rank", c.q_lora_rank, 0, 1 << 16);
  check_range(src, "qk_nope_head_dim", c.qk_nope_head_dim, 0, 1 << 12);
  check_range(src, "qk_rope_head_dim", c.qk_rope_head_dim, 2, 1 << 12);
  DS_CHECK(c.qk_rope_head_dim % 2 == 0, src, ": qk_rope_head_dim = ", c.qk_rope_head_dim, " must be even (RoPE pairs)");
  check_range(src, "v_head_dim", c.v_head_dim, 1, 1 << 12);
  check_range(src, "num_nextn_predict_layers", c.num_nextn_predict_layers, 0, 16);
  DS_CHECK(!c.attention_bias, src, ": attention_bias = true is not supported (DeepSeek MLA has no biases)");
  if (c.indexer()) {
    check_range(src, "index_n_heads", c.index_n_heads, 1, 1 << 12);
    check_range(src, "index_head_dim", c.index_head_dim, c.qk_rope_head_dim, 1 << 12);
    check_range(src, "index_topk", c.index_topk, 1, int64_t(1) << 24);
    DS_CHECK(c.q_lora_rank > 0, src, ": the indexer (index_topk = ", c.index_topk,
             ") reads the query's low-rank latent: q_lora_rank must be set");
  }
  DS_CHECK(c.rope_scaling.type == RopeType::None || c.rope_scaling.yarn(), src,
           ": DeepSeek MLA models use YaRN or plain RoPE (rope_scaling type yarn or none)");
  if (c.n_routed_experts > 0) {
    check_range(src, "n_routed_experts", c.n_routed_experts, 1, 1 << 14);
    check_range(src, "moe_intermediate_size", c.moe_intermediate_size, 1, 1 << 20);
    check_range(src, "n_shared_experts", c.n_shared_experts, 0, 64);
    check_range(src, "num_experts_per_tok", c.num_experts_per_tok, 1, c.n_routed_experts);
    check_range(src, "n_group", c.n_group, 1, c.n_routed_experts);
    DS_CHECK(c.n_routed_experts % c.n_group == 0, src, ": n_group = ", c.n_group, " does not divide n_routed_experts = ",
             c.n_routed_experts);
    check_range(src, "topk_group", c.topk_group, 1, c.n_group);
    if (c.topk_method != TopkMethod::Greedy)
      DS_CHECK(c.topk_group * (c.n_routed_experts / c.n_group) >= c.num_experts_per_tok, src,
               ": topk_group = ", c.topk_group, " groups of ", c.n_routed_experts / c.n_group,
               " experts cannot supply num_experts_per_tok = ", c.num_experts_per_tok);
    check_range(src, "first_k_dense_replace", c.first_k_dense_replace, 0, c.num_hidden_layers);
    check_range(src, "moe_layer_freq", c.moe_layer_freq, 1, c.num_hidden_layers);
    DS_CHECK(std::isfinite(c.routed_scaling_factor) && c.routed_scaling_factor > 0, src,
             ": routed_scaling_factor = ", c.routed_scaling_factor, " must be a positive number");
  }
  return validate(c, src);
}

ModelConfig load_config(const std::string& path) { return parse_config(read_json_file(path, 1 << 20), path); }

std::string describe(const ModelConfig& c) {
  std::ostringstream os;
  static const char* kScoring[] = {"softmax", "sigmoid"};
  static const char* kMethod[] = {"greedy", "group_limited_greedy", "noaux_tc"};
  os << "model_type              " << c.model_type << "\n"
     << "vocab_size              " << c.vocab_size << "\n"
     << "hidden_size             " << c.hidden_size << "\n"
     << "num_hidden_layers       " << c.num_hidden_layers << " (+" << c.num_nextn_predict_layers << " MTP)\n"
     << "num_attention_heads     " << c.num_attention_heads << "\n";
  if (c.mla())
    os << "q_lora_rank             " << (c.q_lora_rank ? std::to_string(c.q_lora_rank) : "null (q_proj)") << "\n"
       << "kv_lora_rank            " << c.kv_lora_rank << "\n"
       << "qk_nope/rope/v_head_dim " << c.qk_nope_head_dim << " / " << c.qk_rope_head_dim << " / " << c.v_head_dim
       << "\n"
       << "intermediate_size       " << c.intermediate_size << " (dense layers: " << c.first_k_dense_replace << ")\n"
       << (c.indexer() ? "sparse attention        indexer " + std::to_string(c.index_n_heads) + " heads x " +
                             std::to_string(c.index_head_dim) + ", top " + std::to_string(c.index_topk) + " positions\n"
                       : std::string());
  else
    os << "attention               grouped-query, " << c.num_key_value_heads << " kv heads, head_dim " << c.head_dim
       << (c.qkv_bias ? ", q/k/v bias" : "") << (c.o_bias ? ", o bias" : "") << (c.qk_norm ? ", q/k norm" : "")
       << (c.rope_interleaved ? ", rope pairs interleaved" : "") << "\n"
       << "intermediate_size       " << c.intermediate_size << " (dense MLP)\n"
       << "tie_word_embeddings     " << (c.tie_word_embeddings ? "true" : "false") << "\n";
  if (c.n_routed_experts > 0)
    os << "experts                 " << c.n_routed_experts << " routed x " << c.moe_intermediate_size << ", "
       << c.n_shared_experts << " shared, top-" << c.num_experts_per_tok << ", groups " << c.n_group << "/"
       << c.topk_group << "\n"
       << "routing                 " << kScoring[int(c.scoring_func)] << " " << kMethod[int(c.topk_method)]
       << ", norm_topk_prob " << (c.norm_topk_prob ? "true" : "false") << ", routed_scaling_factor "
       << c.routed_scaling_factor << "\n";
  os << "rope                    theta " << c.rope_theta;
  if (c.rope_scaling.type == RopeType::Llama3)
    os << ", llama3 factor " << c.rope_scaling.factor << " orig " << c.rope_scaling.original_max_position_embeddings
       << " low/high " << c.rope_scaling.low_freq_factor << "/" << c.rope_scaling.high_freq_factor;
  if (c.rope_scaling.type == RopeType::Linear) os << ", linear factor " << c.rope_scaling.factor;
  if (c.rope_scaling.attn_factor > 0) os << ", attn_factor " << c.rope_scaling.attn_factor;
  if (c.rope_scaling.yarn())
    os << ", yarn factor " << c.rope_scaling.factor << " orig " << c.rope_scaling.original_max_position_embeddings
       << " beta " << c.rope_scaling.beta_fast << "/" << c.rope_scaling.beta_slow << " mscale "
       << c.rope_scaling.mscale << "/" << c.rope_scaling.mscale_all_dim;
  os << "\nmax_position_embeddings " << c.max_position_embeddings << "\n";
  os << "weights                 " << (c.fp8 ? "fp8 e4m3 block " : "no quantization_config (formats per tensor below)");
  if (c.fp8) os << c.weight_block_rows << "x" << c.weight_block_cols << (c.scale_ue8m0 ? " (ue8m0 scales)" : "");
  os << "\n";
  return os.str();
}

}  // namespace ds::io
