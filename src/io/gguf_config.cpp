// SPDX-License-Identifier: MIT
// A GGUF file's `deepseek2` metadata as the config.json it was converted from, then validated by parse_config like
// any config.json. Keys as llama.cpp's converters write them (convert_hf_to_gguf.py DeepseekV2Model).
#include <cmath>

#include "base/error.h"
#include "io/config.h"
#include "io/gguf.h"
#include "io/json_util.h"

namespace ds::io {

namespace {

// qwen2 (R1-Distill-Qwen), llama (R1-Distill-Llama), qwen3 (R1-0528-Qwen3): llama.cpp's LlamaModel / Qwen2Model /
// Qwen3Model converters. Llama's q/k rows are permuted for adjacent-pair RoPE; the others are stored as in HF.
ModelConfig dense_config_from_gguf(const GgufModel& m, const std::string& arch) {
  const std::string src = m.first().path(), a = arch + ".";
  auto i = [&](const std::string& k) { return m.get_int(a + k); };
  auto i_or = [&](const std::string& k, int64_t d) { return m.get_int_or(a + k, d); };
  auto f_or = [&](const std::string& k, double d) { return m.get_float_or(a + k, d); };
  Json j = Json::object();
  j["model_type"] = arch;
  j["architectures"] = Json::array({"gguf:" + arch});
  const GgufTensor* embd = m.tensor("token_embd.weight");
  DS_CHECK(embd && embd->ne.size() == 2, src, ": no 2-D token_embd.weight tensor");
  const int64_t H = i("attention.head_count"), D = i("embedding_length");
  j["vocab_size"] = i_or("vocab_size", embd->ne[1]);
  j["hidden_size"] = D;
  j["intermediate_size"] = i("feed_forward_length");
  j["num_hidden_layers"] = i("block_count");
  j["num_attention_heads"] = H;
  j["num_key_value_heads"] = i_or("attention.head_count_kv", H);
  j["head_dim"] = i_or("attention.key_length", H > 0 ? D / H : 0);
  DS_CHECK(i_or("attention.value_length", j["head_dim"].get<int64_t>()) == j["head_dim"].get<int64_t>(), src, ": ", a,
           "attention.value_length differs from key_length (not a grouped-query model deepseek.cpp runs)");
  j["rms_norm_eps"] = f_or("attention.layer_norm_rms_epsilon", 1e-6);
  j["rope_theta"] = f_or("rope.freq_base", 10000.0);
  j["max_position_embeddings"] = i_or("context_length", 4096);
  if (arch != "qwen2") j["attention_bias"] = m.tensor("blk.0.attn_q.bias") != nullptr;
  if (const GgufValue* t = m.find(a + "rope.scaling.type")) {
    DS_CHECK(t->type == GgufType::STRING, src, ": ", a, "rope.scaling.type must be a string");
    if (t->s == "yarn") {
      j["rope_scaling"] = {{"rope_type", "yarn"},
                           {"factor", f_or("rope.scaling.factor", 1.0)},
                           {"original_max_position_embeddings", i_or("rope.scaling.original_context_length", 4096)},
                           {"beta_fast", f_or("rope.scaling.yarn_beta_fast", 32.0)},
                           {"beta_slow", f_or("rope.scaling.yarn_beta_slow", 1.0)}};
      // The converter writes config.json's rope_scaling.attn_factor (R1-0528-Qwen3-8B: 0.878) here; it multiplies the
      // YaRN magnitude as on the checkpoint (llama.cpp's own qwen3 loader ignores it; see docs/ARCHITECTURE.md).
      if (m.find(a + "rope.scaling.yarn_attn_factor")) j["rope_scaling"]["attn_factor"] = f_or("rope.scaling.yarn_attn_factor", 0.0);
    } else if (t->s == "linear")
      j["rope_scaling"] = {{"rope_type", "linear"}, {"factor", f_or("rope.scaling.factor", 1.0)}};
    else
      DS_CHECK(t->s == "none", src, ": ", a, "rope.scaling.type '", show_text(t->s),
               "' is not supported (yarn, linear or none)");
  }
  j["tie_word_embeddings"] = m.tensor("output.weight") == nullptr;
  if (const GgufValue* b = m.find("tokenizer.ggml.bos_token_id")) j["bos_token_id"] = b->i;
  if (const GgufValue* e = m.find("tokenizer.ggml.eos_token_id")) j["eos_token_id"] = e->i;
  ModelConfig c = parse_config(j, src);
  c.rope_interleaved = arch == "llama";
  if (const GgufTensor* rf = m.tensor("rope_freqs.weight")) {
    DS_CHECK(rf->type == 0 && rf->ne.size() == 1 && rf->ne[0] == c.head_dim / 2, src,
             ": rope_freqs.weight must be F32 [", c.head_dim / 2, "] (one divisor per RoPE frequency)");
    const float* f = reinterpret_cast<const float*>(rf->data);
    c.rope_scaling.freq_factors.assign(f, f + rf->ne[0]);
    for (float x : c.rope_scaling.freq_factors)
      DS_CHECK(std::isfinite(x) && x > 0, src, ": rope_freqs.weight holds ", x, " (divisors must be positive)");
  }
  return c;
}

}  // namespace

ModelConfig config_from_gguf(const GgufModel& m) {
  const std::string src = m.first().path();
  const std::string arch = m.get_string("general.architecture");
  if (arch == "qwen2" || arch == "llama" || arch == "qwen3") return dense_config_from_gguf(m, arch);
  DS_CHECK(arch == "deepseek2" || arch == "deepseek32", src, ": GGUF architecture '", show_text(arch),
           "' is not supported (deepseek2: DeepSeek V2, V2-Lite, V2.5, V3, R1, V3.1; deepseek32: V3.2; qwen2, llama, "
           "qwen3: the R1 distills)");
  const std::string a = arch + ".";
  auto i = [&](const std::string& k) { return m.get_int(a + k); };
  auto i_or = [&](const std::string& k, int64_t d) { return m.get_int_or(a + k, d); };
  auto f_or = [&](const std::string& k, double d) { return m.get_float_or(a + k, d); };

  Json j = Json::object();
  const int64_t H = i("attention.head_count"), rope = i("rope.dimension_count");
  const int64_t sigmoid = i_or("expert_gating_func", 1) == 2;  // llama.cpp: 1 softmax, 2 sigmoid
  j["model_type"] = arch == "deepseek32" ? "deepseek_v32" : sigmoid ? "deepseek_v3" : "deepseek_v2";
  if (arch == "deepseek32") {  // the lightning indexer
    j["index_n_heads"] = i("attention.indexer.head_count");
    j["index_head_dim"] = i("attention.indexer.key_length");
    j["index_topk"] = i("attention.indexer.top_k");
  }
  j["architectures"] = Json::array({"gguf:" + arch});
  const GgufTensor* embd = m.tensor("token_embd.weight");
  DS_CHECK(embd && embd->ne.size() == 2, src, ": no 2-D token_embd.weight tensor");
  j["vocab_size"] = i_or("vocab_size", embd->ne[1]);
  j["hidden_size"] = i("embedding_length");
  j["intermediate_size"] = i("feed_forward_length");
  const int64_t nextn = i_or("nextn_predict_layers", 0);
  j["num_hidden_layers"] = i("block_count") - nextn;
  j["num_nextn_predict_layers"] = 0;  // MTP layers of GGUF files are not bound yet
  j["num_attention_heads"] = H;
  j["num_key_value_heads"] = H;
  j["q_lora_rank"] = i_or("attention.q_lora_rank", 0);
  j["kv_lora_rank"] = i("attention.kv_lora_rank");
  j["qk_rope_head_dim"] = rope;
  // Newer converters write the MLA head sizes separately (key_length_mla / value_length_mla) and describe the
  // absorbed layout in key_length / value_length; older ones only key_length / value_length.
  j["qk_nope_head_dim"] = i_or("attention.key_length_mla", i("attention.key_length")) - rope;
  j["v_head_dim"] = i_or("attention.value_length_mla", i("attention.value_length"));
  const int64_t experts = i_or("expert_count", 0);
  j["n_routed_experts"] = experts;
  if (experts > 0) {
    j["moe_intermediate_size"] = i("expert_feed_forward_length");
    j["n_shared_experts"] = i_or("expert_shared_count", 0);
    j["num_experts_per_tok"] = i("expert_used_count");
    j["n_group"] = i_or("expert_group_count", 1);
    j["topk_group"] = i_or("expert_group_used_count", 1);
    j["first_k_dense_replace"] = i_or("leading_dense_block_count", 0);
    j["routed_scaling_factor"] = f_or("expert_weights_scale", 1.0);
    j["norm_topk_prob"] = m.find(a + "expert_weights_norm") && m.find(a + "expert_weights_norm")->i != 0;
    j["scoring_func"] = sigmoid ? "sigmoid" : "softmax";
    // The routing method is not a key: the correction bias means noaux_tc; groups without it, group-limited.
    const bool bias = m.tensor("blk." + std::to_string(i_or("leading_dense_block_count", 0)) + ".exp_probs_b.bias");
    j["topk_method"] = bias ? "noaux_tc" : (j["n_group"].get<int64_t>() > 1 ? "group_limited_greedy" : "greedy");
  }
  j["rms_norm_eps"] = f_or("attention.layer_norm_rms_epsilon", 1e-6);
  j["rope_theta"] = f_or("rope.freq_base", 10000.0);
  j["max_position_embeddings"] = i_or("context_length", 4096);
  if (const GgufValue* t = m.find(a + "rope.scaling.type")) {
    DS_CHECK(t->type == GgufType::STRING, src, ": ", a, "rope.scaling.type must be a string");
    if (t->s == "yarn") {
      // llama.cpp keeps 0.1 * mscale_all_dim as yarn_log_multiplier and applies it to both the RoPE tables and the
      // softmax scale: HF's mscale == mscale_all_dim.
      const double mscale = f_or("rope.scaling.yarn_log_multiplier", 0.0) / 0.1;
      j["rope_scaling"] = {{"type", "yarn"},
                           {"factor", f_or("rope.scaling.factor", 1.0)},
                           {"original_max_position_embeddings", i_or("rope.scaling.original_context_length", 4096)},
                           {"beta_fast", f_or("rope.scaling.yarn_beta_fast", 32.0)},
                           {"beta_slow", f_or("rope.scaling.yarn_beta_slow", 1.0)},
                           {"mscale", std::round(mscale * 1e6) / 1e6},
                           {"mscale_all_dim", std::round(mscale * 1e6) / 1e6}};
    } else {
      DS_CHECK(t->s == "none", src, ": ", a, "rope.scaling.type '", show_text(t->s), "' is not supported (yarn or none)");
    }
  }
  j["tie_word_embeddings"] = m.tensor("output.weight") == nullptr;
  if (const GgufValue* b = m.find("tokenizer.ggml.bos_token_id")) j["bos_token_id"] = b->i;
  if (const GgufValue* e = m.find("tokenizer.ggml.eos_token_id")) j["eos_token_id"] = e->i;
  return parse_config(j, src);
}

}  // namespace ds::io
