// SPDX-License-Identifier: MIT
// Test helpers: a minimal GGUF writer (metadata only, no tensors, laid out as gguf-py's GGUFWriter writes a
// vocabulary-only file) and llama.cpp's converter recipe for a Hugging Face byte-level BPE tokenizer
// (convert_hf_to_gguf.py _set_vocab_gpt2: get_vocab_base + gguf.SpecialVocab(load_merges=True)), so the tests can
// build the GGUF of a real tokenizer without Python. tools/gguf_goldens/tokenizer_gguf.py writes the same file with
// gguf-py; the two are byte-identical for DeepSeek-V3 (checked when this was written; see that script).
#pragma once
#include <cstdint>
#include <cstring>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace ds::tok::test {

class GgufWriter {
 public:
  // gguf value types
  enum : uint32_t { U32 = 4, I32 = 5, BOOL = 7, STRING = 8, ARRAY = 9 };

  void str(const std::string& key, const std::string& v) {
    Kv& k = add(key, STRING);
    put_str(k.payload, v);
  }
  void u32(const std::string& key, uint32_t v) { put(add(key, U32).payload, v); }
  void boolean(const std::string& key, bool v) { add(key, BOOL).payload.push_back(v ? 1 : 0); }
  void str_array(const std::string& key, const std::vector<std::string>& v) {
    Kv& k = add(key, ARRAY);
    put<uint32_t>(k.payload, STRING);
    put<uint64_t>(k.payload, v.size());
    for (const auto& s : v) put_str(k.payload, s);
  }
  void i32_array(const std::string& key, const std::vector<int32_t>& v) {
    Kv& k = add(key, ARRAY);
    put<uint32_t>(k.payload, I32);
    put<uint64_t>(k.payload, v.size());
    for (int32_t x : v) put(k.payload, x);
  }
  void remove(const std::string& key) {
    for (size_t i = 0; i < kv_.size(); ++i)
      if (kv_[i].key == key) kv_.erase(kv_.begin() + long(i));
  }

  // magic, version 3, 0 tensors, the metadata count, the pairs in insertion order; nothing after them.
  std::vector<uint8_t> bytes() const {
    std::vector<uint8_t> b = {'G', 'G', 'U', 'F'};
    put<uint32_t>(b, 3);
    put<uint64_t>(b, 0);
    put<uint64_t>(b, kv_.size());
    for (const Kv& k : kv_) {
      put_str(b, k.key);
      put<uint32_t>(b, k.type);
      b.insert(b.end(), k.payload.begin(), k.payload.end());
    }
    return b;
  }
  void write(const std::string& path) const {
    const auto b = bytes();
    std::ofstream f(path, std::ios::binary | std::ios::trunc);
    f.write(reinterpret_cast<const char*>(b.data()), std::streamsize(b.size()));
  }

 private:
  struct Kv {
    std::string key;
    uint32_t type;
    std::vector<uint8_t> payload;
  };
  Kv& add(const std::string& key, uint32_t type) {
    remove(key);
    kv_.push_back({key, type, {}});
    return kv_.back();
  }
  template <typename T>
  static void put(std::vector<uint8_t>& b, T v) {
    uint8_t raw[sizeof(T)];
    std::memcpy(raw, &v, sizeof(T));
    b.insert(b.end(), raw, raw + sizeof(T));
  }
  static void put_str(std::vector<uint8_t>& b, const std::string& s) {
    put<uint64_t>(b, s.size());
    b.insert(b.end(), s.begin(), s.end());
  }
  std::vector<Kv> kv_;
};

// ModelBase.does_token_look_special.
inline bool converter_looks_special(const std::string& s) {
  auto starts = [&](const std::string& p) { return s.rfind(p, 0) == 0; };
  auto ends = [&](const std::string& p) { return s.size() >= p.size() && s.compare(s.size() - p.size(), p.size(), p) == 0; };
  return s == "<pad>" || s == "<mask>" || s == "<2mass>" || s == "[@BOS@]" || (starts("<|") && ends("|>")) ||
         (starts("<｜") && ends("｜>")) || (starts("<unused") && ends(">"));
}

// The GGUF metadata convert_hf_to_gguf.py writes for a byte-level BPE tokenizer (DeepseekV2Model.set_vocab ->
// _set_vocab_gpt2), in its key order: general.architecture, tokenizer.ggml.model / pre / tokens / token_type, then
// SpecialVocab's merges, special token ids, add_*_token flags and chat template. `vocab_size` is config.json's
// (ids without a token become "[PAD<id>]", type unused). The converter's decode(encode(t)) of non-normalized added
// tokens is taken as the identity (true for tokens matched whole, as all of DeepSeek-V3's are).
inline GgufWriter converter_vocab(const nlohmann::json& tj, const nlohmann::json& cfg, int64_t vocab_size,
                                  const std::string& pre, const std::string& arch = "deepseek2") {
  std::map<int64_t, std::string> reverse;
  for (auto it = tj.at("model").at("vocab").begin(); it != tj.at("model").at("vocab").end(); ++it)
    reverse[it.value().get<int64_t>()] = it.key();
  std::map<std::string, const nlohmann::json*> added_by_content;
  std::map<int64_t, const nlohmann::json*> added_by_id;
  for (const auto& a : tj.at("added_tokens")) {
    reverse[a.at("id").get<int64_t>()] = a.at("content").get<std::string>();
    added_by_content[a.at("content").get<std::string>()] = &a;
    added_by_id[a.at("id").get<int64_t>()] = &a;
  }
  std::vector<std::string> tokens;
  std::vector<int32_t> types;
  for (int64_t i = 0; i < vocab_size; ++i) {
    auto it = reverse.find(i);
    if (it == reverse.end()) {
      tokens.push_back("[PAD" + std::to_string(i) + "]");
      types.push_back(5);
      continue;
    }
    std::string t = it->second;
    if (added_by_content.count(t)) {
      if (added_by_id.at(i)->value("special", false) || converter_looks_special(t)) {
        types.push_back(3);
      } else {
        for (size_t p; (p = t.find("\xE2\x96\x81")) != std::string::npos;) t.replace(p, 3, " ");
        types.push_back(4);
      }
    } else {
      types.push_back(1);
    }
    tokens.push_back(t);
  }
  GgufWriter w;
  w.str("general.architecture", arch);
  w.str("tokenizer.ggml.model", "gpt2");
  w.str("tokenizer.ggml.pre", pre);
  w.str_array("tokenizer.ggml.tokens", tokens);
  w.i32_array("tokenizer.ggml.token_type", types);
  // SpecialVocab: merges as "a b" (the list form joined, spaces inside a part written as U+0120).
  std::vector<std::string> merges;
  for (const auto& m : tj.at("model").at("merges")) {
    if (m.is_string()) {
      merges.push_back(m.get<std::string>());
      continue;
    }
    std::string line;
    for (size_t k = 0; k < 2; ++k) {
      if (k) line += ' ';
      for (char c : m[k].get<std::string>()) line += c == ' ' ? std::string("\xC4\xA0") : std::string(1, c);
    }
    merges.push_back(line);
  }
  if (!merges.empty()) w.str_array("tokenizer.ggml.merges", merges);
  // Special token ids: the first added token whose content is tokenizer_config.json's `<typ>_token`.
  const char* id_keys[][2] = {{"bos", "tokenizer.ggml.bos_token_id"},      {"eos", "tokenizer.ggml.eos_token_id"},
                              {"unk", "tokenizer.ggml.unknown_token_id"},  {"sep", "tokenizer.ggml.seperator_token_id"},
                              {"pad", "tokenizer.ggml.padding_token_id"},  {"cls", nullptr},
                              {"mask", "tokenizer.ggml.mask_token_id"}};
  for (const auto& [typ, key] : id_keys) {
    if (!cfg.is_object() || !key) continue;
    const std::string field = std::string(typ) + "_token";
    if (!cfg.contains(field)) continue;
    const auto& e = cfg.at(field);
    std::string content;
    if (e.is_string()) content = e.get<std::string>();
    else if (e.is_object() && e.contains("content") && e.at("content").is_string()) content = e.at("content").get<std::string>();
    else continue;
    for (const auto& a : tj.at("added_tokens"))
      if (a.at("content").get<std::string>() == content) {
        w.u32(key, uint32_t(a.at("id").get<int64_t>()));
        break;
      }
  }
  for (const char* typ : {"bos", "eos", "sep"}) {
    const std::string field = std::string("add_") + typ + "_token";
    if (cfg.is_object() && cfg.contains(field) && cfg.at(field).is_boolean())
      w.boolean("tokenizer.ggml." + field, cfg.at(field).get<bool>());
  }
  if (cfg.is_object() && cfg.contains("chat_template") && cfg.at("chat_template").is_string() &&
      !cfg.at("chat_template").get<std::string>().empty())
    w.str("tokenizer.chat_template", cfg.at("chat_template").get<std::string>());
  return w;
}

}  // namespace ds::tok::test
