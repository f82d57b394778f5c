// SPDX-License-Identifier: MIT
// deepseek2 / deepseek32 / qwen2 / llama / qwen3 GGUF metadata and tokenizer metadata as convert_hf_to_gguf.py writes them (see
// gguf_meta.h).
#include "io/gguf_meta.h"

#include <fstream>
#include <map>
#include <sstream>
#include <vector>

#include "base/error.h"

namespace ds::io {

namespace {

// GGUF token types (gguf-py TokenType).
enum : int64_t { kNormal = 1, kControl = 3, kUserDefined = 4, kUnused = 5 };

// ModelBase.does_token_look_special.
bool looks_special(const std::string& s) {
  auto starts = [&](const char* p) { return s.rfind(p, 0) == 0; };
  auto ends = [&](const std::string& p) { return s.size() >= p.size() && s.compare(s.size() - p.size(), p.size(), p) == 0; };
  return s == "<pad>" || s == "<mask>" || s == "<2mass>" || s == "[@BOS@]" || (starts("<|") && ends("|>")) ||
         (starts("<\xEF\xBD\x9C") && ends("\xEF\xBD\x9C>")) || (starts("<unused") && ends(">"));
}

// U+2581 (SentencePiece's space mark) shown as a space, as the converter does for user-defined tokens.
std::string spaces_for_u2581(const std::string& t) {
  std::string r;
  for (size_t i = 0; i < t.size();) {
    if (t.compare(i, 3, "\xE2\x96\x81") == 0) {
      r += ' ';
      i += 3;
    } else {
      r += t[i++];
    }
  }
  return r;
}

std::string utf8(uint32_t cp) {
  std::string s;
  if (cp < 0x80) {
    s += char(cp);
  } else if (cp < 0x800) {
    s += char(0xC0 | (cp >> 6));
    s += char(0x80 | (cp & 0x3F));
  } else {
    s += char(0xE0 | (cp >> 12));
    s += char(0x80 | ((cp >> 6) & 0x3F));
    s += char(0x80 | (cp & 0x3F));
  }
  return s;
}

// tokenizer_config.json's `<typ>_token`: a string or an AddedToken object's content.
bool token_content(const Json& cfg, const std::string& field, std::string* out) {
  if (!cfg.is_object() || !cfg.contains(field)) return false;
  const Json& e = cfg.at(field);
  if (e.is_string()) {
    *out = e.get<std::string>();
    return true;
  }
  if (e.is_object() && e.contains("content") && e.at("content").is_string()) {
    *out = e.at("content").get<std::string>();
    return true;
  }
  return false;
}

}  // namespace

void add_deepseek2_metadata(GgufWriter& w, const ModelConfig& c, const std::string& name, uint32_t file_type) {
  // DeepSeek-V3.2 (the lightning indexer): llama.cpp's deepseek32, the same keys plus the indexer's.
  const std::string arch = c.indexer() ? "deepseek32" : "deepseek2", a = arch + ".";
  w.set_string("general.architecture", arch);
  w.set_string("general.type", "model");
  w.set_string("general.name", name);
  // TextModel.set_gguf_parameters
  w.set_u32(a + "block_count", uint32_t(c.num_hidden_layers));
  w.set_u32(a + "context_length", uint32_t(c.max_position_embeddings));
  w.set_u32(a + "embedding_length", uint32_t(c.hidden_size));
  w.set_u32(a + "feed_forward_length", uint32_t(c.intermediate_size));
  w.set_u32(a + "attention.head_count", uint32_t(c.num_attention_heads));
  w.set_u32(a + "attention.head_count_kv", 1);  // MLA is converted to MQA (one latent "head" of kv_lora + rope)
  const RopeScaling& rs = c.rope_scaling;
  if (rs.yarn()) {
    w.set_string(a + "rope.scaling.type", "yarn");
    w.set_f32(a + "rope.scaling.factor", float(rs.factor));
    w.set_u32(a + "rope.scaling.original_context_length", uint32_t(rs.original_max_position_embeddings));
    if (rs.attention_factor != 0) w.set_f32(a + "rope.scaling.yarn_attn_factor", float(rs.attention_factor));
    w.set_f32(a + "rope.scaling.yarn_beta_fast", float(rs.beta_fast));
    w.set_f32(a + "rope.scaling.yarn_beta_slow", float(rs.beta_slow));
  }
  w.set_f32(a + "rope.freq_base", float(c.rope_theta));
  w.set_f32(a + "attention.layer_norm_rms_epsilon", float(c.rms_norm_eps));
  const bool moe = c.n_routed_experts > 0;
  if (moe) {
    w.set_u32(a + "expert_count", uint32_t(c.n_routed_experts));
    w.set_u32(a + "expert_used_count", uint32_t(c.num_experts_per_tok));
    w.set_u32(a + "expert_group_count", uint32_t(c.n_group));
    w.set_u32(a + "expert_group_used_count", uint32_t(c.topk_group));
    w.set_u32(a + "expert_gating_func", c.scoring_func == ScoringFunc::Sigmoid ? 2 : 1);
  }
  w.set_u32("general.file_type", file_type);
  // DeepseekV2Model.set_gguf_parameters
  w.set_u32(a + "leading_dense_block_count", uint32_t(moe ? c.first_k_dense_replace : c.num_hidden_layers));
  w.set_u32(a + "vocab_size", uint32_t(c.vocab_size));
  w.set_u32(a + "attention.q_lora_rank", uint32_t(c.q_lora_rank));
  w.set_u32(a + "attention.kv_lora_rank", uint32_t(c.kv_lora_rank));
  w.set_u32(a + "attention.key_length", uint32_t(c.kv_lora_rank + c.qk_rope_head_dim));
  w.set_u32(a + "attention.value_length", uint32_t(c.kv_lora_rank));
  w.set_u32(a + "attention.key_length_mla", uint32_t(c.qk_nope_head_dim + c.qk_rope_head_dim));
  w.set_u32(a + "attention.value_length_mla", uint32_t(c.v_head_dim));
  w.set_u32(a + "expert_feed_forward_length",
            uint32_t(c.moe_intermediate_size > 0 ? c.moe_intermediate_size : c.intermediate_size));
  w.set_u32(a + "expert_shared_count", uint32_t(c.n_shared_experts));
  w.set_f32(a + "expert_weights_scale", float(c.routed_scaling_factor));
  w.set_bool(a + "expert_weights_norm", c.norm_topk_prob);
  w.set_u32(a + "rope.dimension_count", uint32_t(c.qk_rope_head_dim));
  // [TAG_DEEPSEEK2_YARN_LOG_MUL_FIX]: llama.cpp divides this by 0.1 again and uses it as mscale == mscale_all_dim.
  if (rs.yarn() && rs.mscale_all_dim != 0)
    w.set_f32(a + "rope.scaling.yarn_log_multiplier", float(0.1 * rs.mscale_all_dim));
  if (c.indexer()) {  // DeepseekV32Model.set_gguf_parameters
    w.set_u32(a + "attention.indexer.head_count", uint32_t(c.index_n_heads));
    w.set_u32(a + "attention.indexer.key_length", uint32_t(c.index_head_dim));
    w.set_u32(a + "attention.indexer.top_k", uint32_t(c.index_topk));
  }
  w.set_u32("general.quantization_version", 2);
}

void add_dense_metadata(GgufWriter& w, const ModelConfig& c, const Json& cj, const std::string& name,
                        uint32_t file_type) {
  DS_CHECK(!c.mla() && (c.model_type == "qwen2" || c.model_type == "llama" || c.model_type == "qwen3"),
           "GGUF metadata: model_type '", show_text(c.model_type), "' is not qwen2, llama or qwen3");
  const std::string arch = c.model_type, a = arch + ".";
  const Json none = Json::object();
  const Json& rsj = cj.is_object() && cj.contains("rope_scaling") && cj.at("rope_scaling").is_object()
                        ? cj.at("rope_scaling")
                        : none;
  auto rs_number = [&](const char* k) -> const Json* {
    return rsj.contains(k) && rsj.at(k).is_number() ? &rsj.at(k) : nullptr;
  };
  w.set_string("general.architecture", arch);
  w.set_string("general.type", "model");
  w.set_string("general.name", name);
  // TextModel.set_gguf_parameters
  w.set_u32(a + "block_count", uint32_t(c.num_hidden_layers));
  w.set_u32(a + "context_length", uint32_t(c.max_position_embeddings));
  w.set_u32(a + "embedding_length", uint32_t(c.hidden_size));
  w.set_u32(a + "feed_forward_length", uint32_t(c.intermediate_size));
  w.set_u32(a + "attention.head_count", uint32_t(c.num_attention_heads));
  w.set_u32(a + "attention.head_count_kv", uint32_t(c.num_key_value_heads));
  const RopeScaling& rs = c.rope_scaling;
  if (rs.type == RopeType::Linear) {
    w.set_string(a + "rope.scaling.type", "linear");
    w.set_f32(a + "rope.scaling.factor", float(rs.factor));
  } else if (rs.yarn()) {
    w.set_string(a + "rope.scaling.type", "yarn");
    w.set_f32(a + "rope.scaling.factor", float(rs.factor));
    w.set_u32(a + "rope.scaling.original_context_length", uint32_t(rs.original_max_position_embeddings));
    if (const Json* x = rs_number("extrapolation_factor"))
      w.set_f32(a + "rope.scaling.yarn_ext_factor", x->get<float>());
    const Json* af = rs_number("attention_factor");
    if (!af) af = rs_number("attn_factor");
    if (af) w.set_f32(a + "rope.scaling.yarn_attn_factor", af->get<float>());
    if (rs_number("beta_fast")) w.set_f32(a + "rope.scaling.yarn_beta_fast", float(rs.beta_fast));
    if (rs_number("beta_slow")) w.set_f32(a + "rope.scaling.yarn_beta_slow", float(rs.beta_slow));
  }
  w.set_f32(a + "rope.freq_base", float(c.rope_theta));
  w.set_f32(a + "attention.layer_norm_rms_epsilon", float(c.rms_norm_eps));
  // The converter writes these only for a config that names head_dim; Qwen3's class default (128) need not be
  // hidden / heads, which llama.cpp assumes without the keys, so qwen3 files always get them.
  if (arch == "qwen3" || (cj.is_object() && cj.contains("head_dim") && !cj.at("head_dim").is_null())) {
    w.set_u32(a + "attention.key_length", uint32_t(c.head_dim));
    w.set_u32(a + "attention.value_length", uint32_t(c.head_dim));
  }
  w.set_u32("general.file_type", file_type);
  if (arch == "llama") {  // LlamaModel.set_gguf_parameters
    w.set_u32(a + "vocab_size", uint32_t(c.vocab_size));
    w.set_u32(a + "rope.dimension_count", uint32_t(c.head_dim));
  }
  w.set_u32("general.quantization_version", 2);
}

void add_gpt2_tokenizer_metadata(GgufWriter& w, const Json& tj, const Json& tc, const Json& config,
                                 int64_t vocab_size, const std::string& pre, const std::string& chat_template_file,
                                 const std::string& source) {
  DS_CHECK(tj.is_object() && tj.contains("model") && tj.at("model").is_object(), source,
           ": tokenizer.json has no 'model' object");
  const Json& model = tj.at("model");
  DS_CHECK(model.value("type", std::string()) == "BPE", source, ": tokenizer.json model type '",
           show_text(model.value("type", std::string())),
           "' is not BPE (only byte-level BPE tokenizers, as DeepSeek's, are converted)");
  DS_CHECK(model.contains("vocab") && model.at("vocab").is_object(), source, ": tokenizer.json has no model.vocab");
  const Json empty = Json::array();
  const Json& added = tj.contains("added_tokens") && tj.at("added_tokens").is_array() ? tj.at("added_tokens") : empty;

  std::map<int64_t, std::string> reverse;
  for (auto it = model.at("vocab").begin(); it != model.at("vocab").end(); ++it) {
    DS_CHECK(it.value().is_number_integer(), source, ": tokenizer.json vocab entry '", show_text(it.key()),
             "' has no integer id");
    reverse[it.value().get<int64_t>()] = it.key();
  }
  std::map<std::string, const Json*> added_by_content;
  std::map<int64_t, const Json*> added_by_id;
  for (const Json& t : added) {
    DS_CHECK(t.is_object() && t.contains("id") && t.at("id").is_number_integer() && t.contains("content") &&
                 t.at("content").is_string(),
             source, ": tokenizer.json has an added token without an integer id and a string content");
    const int64_t id = t.at("id").get<int64_t>();
    reverse[id] = t.at("content").get<std::string>();
    added_by_content[t.at("content").get<std::string>()] = &t;
    added_by_id[id] = &t;
  }
  DS_CHECK(!reverse.empty() && reverse.begin()->first >= 0 && reverse.rbegin()->first < vocab_size, source,
           ": tokenizer.json has token ids up to ", reverse.empty() ? 0 : reverse.rbegin()->first,
           ", beyond config.json's vocab_size ", vocab_size);

  std::vector<std::string> tokens;
  std::vector<int64_t> types;
  tokens.reserve(size_t(vocab_size));
  types.reserve(size_t(vocab_size));
  for (int64_t i = 0; i < vocab_size; ++i) {
    auto it = reverse.find(i);
    if (it == reverse.end()) {
      tokens.push_back("[PAD" + std::to_string(i) + "]");
      types.push_back(kUnused);
      continue;
    }
    std::string t = it->second;
    auto ac = added_by_content.find(t);
    if (ac != added_by_content.end()) {
      auto ai = added_by_id.find(i);
      const Json* entry = ai != added_by_id.end() ? ai->second : ac->second;
      if (entry->value("special", false) || looks_special(t)) {
        types.push_back(kControl);
      } else {
        t = spaces_for_u2581(t);
        types.push_back(kUserDefined);
      }
    } else {
      types.push_back(kNormal);
    }
    tokens.push_back(std::move(t));
  }
  w.set_string("tokenizer.ggml.model", "gpt2");
  w.set_string("tokenizer.ggml.pre", pre);
  w.set_strings("tokenizer.ggml.tokens", std::move(tokens));
  w.set_ints("tokenizer.ggml.token_type", GgufType::I32, std::move(types));

  // SpecialVocab: merges, the list form joined with spaces inside a part written as U+0120.
  std::vector<std::string> merges;
  if (model.contains("merges") && model.at("merges").is_array()) {
    for (const Json& m : model.at("merges")) {
      if (m.is_string()) {
        merges.push_back(m.get<std::string>());
        continue;
      }
      DS_CHECK(m.is_array() && m.size() == 2 && m[0].is_string() && m[1].is_string(), source,
               ": tokenizer.json merges must be strings or pairs of strings");
      std::string line;
      for (size_t k = 0; k < 2; ++k) {
        if (k) line += ' ';
        for (char ch : m[k].get<std::string>()) line += ch == ' ' ? std::string("\xC4\xA0") : std::string(1, ch);
      }
      merges.push_back(std::move(line));
    }
  }
  if (!merges.empty()) w.set_strings("tokenizer.ggml.merges", std::move(merges));

  // Special token ids: tokenizer_config.json's `<typ>_token` matched to the first added token with that content;
  // then config.json's `<typ>_token_id` for the types still unset. cls has no GGUF key (the converter skips it).
  const char* id_keys[][2] = {{"bos", "tokenizer.ggml.bos_token_id"},     {"eos", "tokenizer.ggml.eos_token_id"},
                              {"unk", "tokenizer.ggml.unknown_token_id"}, {"sep", "tokenizer.ggml.seperator_token_id"},
                              {"pad", "tokenizer.ggml.padding_token_id"}, {"cls", nullptr},
                              {"mask", "tokenizer.ggml.mask_token_id"}};
  std::map<std::string, int64_t> ids;
  std::vector<std::string> order;
  auto set_id = [&](const std::string& typ, int64_t id) {
    if (id < 0 || ids.count(typ)) return;
    ids[typ] = id;
    order.push_back(typ);
  };
  for (const auto& [typ, key] : id_keys) {
    std::string content;
    if (!token_content(tc, std::string(typ) + "_token", &content)) continue;
    for (const Json& t : added)
      if (t.at("content").get<std::string>() == content) {
        set_id(typ, t.at("id").get<int64_t>());
        break;
      }
  }
  for (const auto& [typ, key] : id_keys) {
    const std::string field = std::string(typ) + "_token_id";
    if (config.is_object() && config.contains(field) && config.at(field).is_number_integer())
      set_id(typ, config.at(field).get<int64_t>());
  }
  for (const std::string& typ : order)
    for (const auto& [t, key] : id_keys)
      if (typ == t && key) w.set_u32(key, uint32_t(ids[typ]));
  for (const char* typ : {"bos", "eos", "unk", "sep", "pad", "cls", "mask"}) {
    const std::string field = std::string("add_") + typ + "_token";
    if (tc.is_object() && tc.contains(field) && tc.at(field).is_boolean() &&
        (std::string(typ) == "bos" || std::string(typ) == "eos" || std::string(typ) == "sep"))
      w.set_bool("tokenizer.ggml." + field, tc.at(field).get<bool>());
  }
  // Chat template: tokenizer_config.json's (a string, or a list of {name, template}: the one named "default" is
  // tokenizer.chat_template, the others tokenizer.chat_template.<name>), else chat_template.jinja.
  const Json* ct = tc.is_object() && tc.contains("chat_template") ? &tc.at("chat_template") : nullptr;
  if (ct && ct->is_string()) {
    w.set_string("tokenizer.chat_template", ct->get<std::string>());
  } else if (ct && ct->is_array()) {
    std::vector<std::string> names;
    for (const Json& e : *ct) {
      if (!e.is_object() || !e.contains("template") || !e.at("template").is_string()) continue;
      const std::string n = e.value("name", std::string());
      if (n == "default") {
        w.set_string("tokenizer.chat_template", e.at("template").get<std::string>());
      } else if (!n.empty()) {
        w.set_string("tokenizer.chat_template." + n, e.at("template").get<std::string>());
        names.push_back(n);
      }
    }
    if (!names.empty()) w.set_strings("tokenizer.chat_templates", std::move(names));
  } else if (!chat_template_file.empty()) {
    std::ifstream f(chat_template_file, std::ios::binary);
    DS_CHECK(f, chat_template_file, ": cannot read the chat template");
    std::ostringstream ss;
    ss << f.rdbuf();
    w.set_string("tokenizer.chat_template", ss.str());
  }
}

bool add_placeholder_vocab(GgufWriter& w, int64_t vocab_size, int64_t bos, int64_t eos) {
  if (vocab_size < 258) return false;
  // GPT-2's byte -> printable code point map (bytes_to_unicode).
  std::vector<std::string> byte_text(256);
  uint32_t extra = 0;
  for (uint32_t b = 0; b < 256; ++b) {
    const bool printable = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174);
    byte_text[b] = utf8(printable ? b : 256 + extra++);
  }
  std::vector<std::string> tokens;
  std::vector<int64_t> types;
  uint32_t next_byte = 0;
  for (int64_t i = 0; i < vocab_size; ++i) {
    if (i == bos || i == eos) {
      tokens.push_back(i == bos ? "<|bos|>" : "<|eos|>");
      types.push_back(kControl);
    } else if (next_byte < 256) {
      tokens.push_back(byte_text[next_byte++]);
      types.push_back(kNormal);
    } else {
      tokens.push_back("<x" + std::to_string(i) + ">");
      types.push_back(kNormal);
    }
  }
  w.set_string("tokenizer.ggml.model", "gpt2");
  w.set_string("tokenizer.ggml.pre", "default");
  w.set_strings("tokenizer.ggml.tokens", std::move(tokens));
  w.set_ints("tokenizer.ggml.token_type", GgufType::I32, std::move(types));
  w.set_strings("tokenizer.ggml.merges", {});
  if (bos >= 0 && bos < vocab_size) w.set_u32("tokenizer.ggml.bos_token_id", uint32_t(bos));
  if (eos >= 0 && eos < vocab_size) w.set_u32("tokenizer.ggml.eos_token_id", uint32_t(eos));
  w.set_bool("tokenizer.ggml.add_bos_token", false);
  w.set_bool("tokenizer.ggml.add_eos_token", false);
  return true;
}

}  // namespace ds::io
