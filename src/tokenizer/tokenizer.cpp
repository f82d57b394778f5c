// SPDX-License-Identifier: MIT
// Tokenizer: loading and the encode/decode pipelines (see tokenizer.h).
#include "tokenizer/tokenizer.h"

#include <algorithm>
#include <climits>
#include <cstdint>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "base/error.h"
#include "tokenizer/bpe.h"
#include "tokenizer/normalizer.h"
#include "tokenizer/pretokenizer.h"
#include "tokenizer/unicode.h"

namespace ds::tok {

namespace {

nlohmann::json load_json(const std::string& path, bool required) {
  std::ifstream f(path, std::ios::binary);
  if (!f) {
    DS_CHECK(!required, path, ": cannot open (expected a Hugging Face tokenizer file)");
    return nullptr;
  }
  std::stringstream ss;
  ss << f.rdbuf();
  try {
    return nlohmann::json::parse(ss.str());
  } catch (const nlohmann::json::exception& e) {
    fail(path, ": invalid JSON: ", e.what());
  }
}

// tokenizer_config.json writes tokens either as strings or as {"__type": "AddedToken", "content": ...}.
std::string token_string(const nlohmann::json& cfg, const char* key) {
  if (!cfg.is_object() || !cfg.contains(key)) return {};
  const auto& v = cfg.at(key);
  if (v.is_string()) return v.get<std::string>();
  if (v.is_object() && v.contains("content")) return v.at("content").get<std::string>();
  return {};
}

// The special token a post_processor puts first in a single sequence (TemplateProcessing, alone or in a Sequence,
// e.g. Llama 3's <|begin_of_text|>); -1 if none. Processors that only fix offsets (ByteLevel) add no ids.
int32_t post_processor_bos(const nlohmann::json& pp) {
  if (!pp.is_object()) return -1;
  const std::string type = pp.value("type", "");
  if (type == "Sequence") {
    for (const auto& p : pp.value("processors", nlohmann::json::array()))
      if (const int32_t id = post_processor_bos(p); id >= 0) return id;
    return -1;
  }
  if (type != "TemplateProcessing") return -1;
  const auto& single = pp.value("single", nlohmann::json::array());
  if (single.empty() || !single[0].contains("SpecialToken")) return -1;
  const std::string name = single[0]["SpecialToken"].value("id", "");
  const auto& st = pp.value("special_tokens", nlohmann::json::object());
  if (!st.contains(name)) return -1;
  const auto& ids = st[name].value("ids", nlohmann::json::array());
  return ids.size() == 1 && ids[0].is_number_integer() ? ids[0].get<int32_t>() : -1;
}

// Ids index tables (the model's id -> bytes/text, the added tokens', a vocab_size() the server sizes masks by), so
// one id of 16,777,215 in a 10-token file would cost a gigabyte. Real tokenizers are dense: ids run from 0 to about
// the number of entries (vocabulary + added tokens), with a few holes at most (the GGUF [PAD] fill; DeepSeek-V3's,
// Qwen's and Llama 3's tokenizer.json have none). Refuse ids beyond the entry count plus this slack.
size_t id_slack(size_t entries) { return std::max<size_t>(1024, entries / 8); }

void check_ids(const nlohmann::json& tj) {
  const auto& model = tj.at("model");
  if (!model.is_object() || !model.contains("vocab") || !model.at("vocab").is_object()) return;  // BpeModel says why
  const auto& vocab = model.at("vocab");
  const auto& added = tj.value("added_tokens", nlohmann::json::array());
  DS_CHECK(added.is_array(), "tokenizer.json: added_tokens must be an array");
  const size_t entries = vocab.size() + added.size();
  const int64_t bound = static_cast<int64_t>(std::min<size_t>(entries + id_slack(entries), size_t{1} << 24));
  const auto check = [&](const nlohmann::json& id, const std::string& token, const char* where) {
    DS_CHECK(id.is_number_integer(), "tokenizer.json: ", where, " '", token, "' has id ", id.dump(),
             ", not an integer");
    const int64_t v = id.is_number_unsigned() && id.get<uint64_t>() > uint64_t(INT64_MAX) ? INT64_MAX : id.get<int64_t>();
    DS_CHECK(v >= 0 && v < bound, "tokenizer.json: ", where, " '", token, "' has id ", v, ", out of range: the file has ",
             entries, " tokens, so ids must be below ", bound, " (the entry count plus a slack of ", bound - int64_t(entries),
             " for holes)");
  };
  for (auto it = vocab.begin(); it != vocab.end(); ++it) check(it.value(), it.key(), "vocabulary token");
  for (const auto& a : added) {
    DS_CHECK(a.is_object() && a.contains("id") && a.contains("content") && a.at("content").is_string(),
             "tokenizer.json: each added_tokens entry needs an \"id\" and a string \"content\"");
    check(a.at("id"), a.at("content").get<std::string>(), "added token");
  }
}

}  // namespace

Tokenizer Tokenizer::from_dir(const std::string& dir) {
  const std::string tj = dir + "/tokenizer.json";
  nlohmann::json t = load_json(tj, true);
  nlohmann::json c = load_json(dir + "/tokenizer_config.json", false);
  try {
    return Tokenizer(t, c);
  } catch (const ds::Error& e) {
    // Name the file: "tokenizer.json: ..." -> "DIR/tokenizer.json: ...".
    const std::string msg = e.what();
    if (msg.rfind("tokenizer.json: ", 0) == 0) fail(tj, msg.substr(14));
    throw;
  }
}

Tokenizer Tokenizer::from_json_text(std::string_view tokenizer_json, std::string_view config_json) {
  nlohmann::json t, c;
  try {
    t = nlohmann::json::parse(tokenizer_json);
  } catch (const nlohmann::json::exception& e) {
    fail("tokenizer.json: invalid JSON: ", e.what());
  }
  try {
    if (!config_json.empty()) c = nlohmann::json::parse(config_json);
  } catch (const nlohmann::json::exception& e) {
    fail("tokenizer_config.json: invalid JSON: ", e.what());
  }
  return Tokenizer(t, c);
}

Tokenizer::Tokenizer(const nlohmann::json& tj, const nlohmann::json& cfg) {
  try {
    init(tj, cfg);
  } catch (const nlohmann::json::exception& e) {  // a field of the wrong type: at(), get<>()
    fail("tokenizer.json: unexpected structure: ", e.what());
  }
}

void Tokenizer::init(const nlohmann::json& tj, const nlohmann::json& cfg) {
  DS_CHECK(tj.is_object() && tj.contains("model"), "tokenizer.json: no \"model\" section");
  check_ids(tj);
  norm_ = std::make_unique<Normalizer>(tj.value("normalizer", nlohmann::json()));
  bpe_ = std::make_unique<BpeModel>(tj.at("model"));
  pre_ = std::make_unique<PreTokenizer>(tj.value("pre_tokenizer", nlohmann::json()));
  vocab_size_ = bpe_->size();
  for (const auto& a : tj.value("added_tokens", nlohmann::json::array())) {
    AddedToken t;
    t.id = a.at("id").get<int32_t>();
    t.content = a.at("content").get<std::string>();
    t.special = a.value("special", false);
    t.normalized = a.value("normalized", false);
    DS_CHECK(t.id >= 0 && t.id < (1 << 24), "tokenizer.json: added token id ", t.id, " out of range");
    DS_CHECK(!a.value("lstrip", false) && !a.value("rstrip", false) && !a.value("single_word", false),
             "tokenizer.json: added token '", t.content, "' uses lstrip/rstrip/single_word, which is not supported");
    vocab_size_ = std::max<size_t>(vocab_size_, static_cast<size_t>(t.id) + 1);
    // HF matches a normalized added token in the normalized text, so by its normalized content.
    std::string match = t.normalized && !norm_->identity() ? nfc(t.content) : std::string();
    added_.add(std::move(t), std::move(match));
  }
  bos_token_ = token_string(cfg, "bos_token");
  eos_token_ = token_string(cfg, "eos_token");
  if (!bos_token_.empty()) bos_id_ = token_to_id(bos_token_);
  if (!eos_token_.empty()) eos_id_ = token_to_id(eos_token_);
  const int32_t pp_bos = post_processor_bos(tj.value("post_processor", nlohmann::json()));
  if (cfg.is_object() && cfg.contains("add_bos_token") && cfg.at("add_bos_token").is_boolean()) {
    add_bos_ = cfg.at("add_bos_token").get<bool>();
  } else if (pp_bos >= 0) {
    add_bos_ = true;
    if (bos_id_ < 0) {
      bos_id_ = pp_bos;
      bos_token_ = id_to_token(pp_bos);
    }
  }
  if (cfg.is_object()) {
    const auto& ct = cfg.value("chat_template", nlohmann::json());
    if (ct.is_string()) {
      chat_template_ = ct.get<std::string>();
    } else if (ct.is_array()) {  // [{"name": "default", "template": ...}, ...]
      for (const auto& e : ct)
        if (e.value("name", "") == "default") chat_template_ = e.value("template", "");
    }
  }
}

Tokenizer::~Tokenizer() = default;
Tokenizer::Tokenizer(Tokenizer&&) noexcept = default;
Tokenizer& Tokenizer::operator=(Tokenizer&&) noexcept = default;

void Tokenizer::encode_text(std::string_view text, std::vector<int32_t>& out) const {
  thread_local std::vector<Span> pieces;
  pieces.clear();
  pre_->split(text, pieces);
  for (const Span& p : pieces) bpe_->encode_piece(text.substr(p.begin, p.len), out);
}

void Tokenizer::encode_normalized(std::string_view text, bool parse_special, std::vector<int32_t>& out) const {
  std::string normalized;
  if (norm_->apply(text, normalized)) text = normalized;
  if (!parse_special || !added_.has_normalized()) {
    encode_text(text, out);
    return;
  }
  std::vector<Segment> segs;
  added_.split_normalized(text, segs);
  for (const Segment& s : segs) {
    if (s.id >= 0) out.push_back(s.id);
    else encode_text(text.substr(s.begin, s.len), out);
  }
}

void Tokenizer::encode_append(std::string_view text, bool parse_special, std::vector<int32_t>& out) const {
  // Offsets are 32-bit inside the pre-tokenizer; refuse absurd inputs with a clear error, not an overflow.
  DS_CHECK(text.size() < (size_t{1} << 31), "tokenize: input of ", text.size(), " bytes exceeds the 2 GiB limit");
  std::string repaired;
  if (!utf8_is_valid(text)) {
    repaired = utf8_sanitize(text);
    text = repaired;
  }
  if (!parse_special) {
    encode_normalized(text, false, out);
    return;
  }
  // As HF's AddedVocabulary: split on the raw (non-normalized) added tokens, normalize each piece between them,
  // then split that on the normalized added tokens.
  std::vector<Segment> segs;
  added_.split_raw(text, segs);
  for (const Segment& s : segs) {
    if (s.id >= 0) out.push_back(s.id);
    else encode_normalized(text.substr(s.begin, s.len), true, out);
  }
}

std::vector<int32_t> Tokenizer::encode(std::string_view text, bool parse_special) const {
  std::vector<int32_t> out;
  out.reserve(text.size() / 3 + 4);
  encode_append(text, parse_special, out);
  return out;
}

std::string Tokenizer::token_to_piece(int32_t id) const {
  if (const AddedToken* a = added_.find_id(id)) return a->content;
  return std::string(bpe_->token_bytes(id));
}

std::string Tokenizer::id_to_token(int32_t id) const {
  if (const AddedToken* a = added_.find_id(id)) return a->content;
  return bpe_->has_id(id) ? bpe_->token_text(id) : std::string();
}

int32_t Tokenizer::token_to_id(std::string_view token) const {
  const int32_t a = added_.find_content(token);
  if (a >= 0) return a;
  std::string bytes;
  if (!bytelevel_decode(token, bytes)) return -1;
  const int32_t id = bpe_->find_bytes(bytes);
  return id >= 0 && bpe_->token_text(id) == token ? id : -1;
}

bool Tokenizer::is_special(int32_t id) const {
  const AddedToken* a = added_.find_id(id);
  return a && a->special;
}

bool Tokenizer::is_valid_id(int32_t id) const { return added_.find_id(id) || bpe_->has_id(id); }

std::string Tokenizer::decode(const std::vector<int32_t>& ids, bool skip_special) const {
  std::string bytes;
  for (int32_t id : ids) {
    if (const AddedToken* a = added_.find_id(id)) {
      if (skip_special && a->special) continue;
      bytes += a->content;
    } else {
      bytes += bpe_->token_bytes(id);
    }
  }
  return utf8_is_valid(bytes) ? bytes : utf8_sanitize(bytes);
}

}  // namespace ds::tok
