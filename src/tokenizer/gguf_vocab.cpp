// SPDX-License-Identifier: MIT
// GGUF tokenizer metadata -> tokenizer.json / tokenizer_config.json objects, and the --model tokenizer lookup
// (see gguf_vocab.h).
#include "tokenizer/gguf_vocab.h"

#include <cstdint>
#include <filesystem>
#include <vector>

#include "base/error.h"
#include "io/gguf.h"
#include "io/json_util.h"

namespace ds::tok {

namespace {

using nlohmann::json;

// GGUF token types (llama.cpp's llama_token_type / gguf-py TokenType).
enum TokenType : int64_t { kNormal = 1, kUnknown = 2, kControl = 3, kUserDefined = 4, kUnused = 5, kByte = 6 };

json split(const std::string& regex) {
  return {{"type", "Split"}, {"pattern", {{"Regex", regex}}}, {"behavior", "Isolated"}, {"invert", false}};
}

// The Hugging Face pre_tokenizer of each model family llama.cpp names in tokenizer.ggml.pre, as tokenizer.json
// writes it: Split regexes applied in sequence, then a ByteLevel step that only maps bytes. HF's
// Digits(individual_digits) is the Split \p{N}+ (false) or \p{N} (true): Rust's char::is_numeric is \p{N}.
struct PreSpec {
  std::vector<std::string> regexes;
  bool ignore_merges = false;   // tokenizer.json model.ignore_merges (Llama 3: a pre-token in the vocabulary is kept)
  bool add_bos_default = false; // when the file has no tokenizer.ggml.add_bos_token (llama.cpp's default)
  bool nfc = false;             // tokenizer.json's NFC normalizer (Qwen2 .. Qwen3; llama.cpp itself skips it)
};

// DeepSeek-LLM / V2 cased-letter class, written with \x{..} escapes: several of its code points (U+1F7D, U+1FBE,
// U+1FD3, U+1FDB, U+2126, U+212A) have canonical singletons, so a literal copy passed through NFC normalisation
// would silently change the class (the range U+212A-U+212D would become U+004B-U+212D, and U+1F5F-U+1F7D an
// invalid descending range).
const char* const kDeepseekLlmLetters =
    R"(\s?[A-Za-z\x{B5}\x{C0}-\x{D6}\x{D8}-\x{F6}\x{F8}-\x{1BA}\x{1BC}-\x{1BF}\x{1C4}-\x{293}\x{295}-\x{2AF})"
    R"(\x{370}-\x{373}\x{376}\x{377}\x{37B}-\x{37D}\x{37F}\x{386}\x{388}-\x{38A}\x{38C}\x{38E}-\x{3A1})"
    R"(\x{3A3}-\x{3F5}\x{3F7}-\x{481}\x{48A}-\x{52F}\x{531}-\x{556}\x{10A0}-\x{10C5}\x{13A0}-\x{13F5})"
    R"(\x{13F8}-\x{13FD}\x{1C90}-\x{1CBA}\x{1CBD}-\x{1CBF}\x{1D00}-\x{1D2B}\x{1D6B}-\x{1D77}\x{1D79}-\x{1D9A})"
    R"(\x{1E00}-\x{1F15}\x{1F18}-\x{1F1D}\x{1F20}-\x{1F45}\x{1F48}-\x{1F4D}\x{1F50}-\x{1F57}\x{1F59}\x{1F5B})"
    R"(\x{1F5D}\x{1F5F}-\x{1F7D}\x{1F80}-\x{1FB4}\x{1FB6}-\x{1FBC}\x{1FBE}\x{1FC2}-\x{1FC4}\x{1FC6}-\x{1FCC})"
    R"(\x{1FD0}-\x{1FD3}\x{1FD6}-\x{1FDB}\x{1FE0}-\x{1FEC}\x{1FF2}-\x{1FF4}\x{1FF6}-\x{1FFC}\x{2102}\x{2107})"
    R"(\x{210A}-\x{2113}\x{2115}\x{2119}-\x{211D}\x{2124}\x{2126}\x{2128}\x{212A}-\x{212D}\x{212F}-\x{2134})"
    R"(\x{2139}\x{213C}-\x{213F}\x{2145}-\x{2149}\x{214E}\x{2183}\x{2184}\x{2C00}-\x{2C7B}\x{2C7E}-\x{2CE4})"
    R"(\x{2CEB}-\x{2CEE}\x{2CF2}\x{2CF3}\x{A640}-\x{A66D}\x{A680}-\x{A69B}\x{A722}-\x{A76F}\x{A771}-\x{A787})"
    R"(\x{A78B}-\x{A78E}\x{AB70}-\x{ABBF}\x{FB00}-\x{FB06}\x{FB13}-\x{FB17}\x{FF21}-\x{FF3A}\x{FF41}-\x{FF5A})"
    R"(\x{10400}-\x{1044F}\x{104B0}-\x{104D3}\x{104D8}-\x{104FB}\x{10C80}-\x{10CB2}\x{10CC0}-\x{10CF2})"
    R"(\x{118A0}-\x{118DF}\x{1E900}-\x{1E943}]+)";
const char* const kCjkHangul = R"([\x{4E00}-\x{9FA5}\x{800}-\x{4E00}\x{AC00}-\x{D7FF}]+)";
// Qwen2 and Llama 3 (GPT-4 style); they differ only in the digit run length.
const char* const kQwen2 =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
// Qwen3.5: letters with their combining marks, and no normalizer.
const char* const kQwen35 =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?[\p{L}\p{M}]+|\p{N}| ?[^\s\p{L}\p{M}\p{N}]+[\r\n]*|)"
    R"(\s*[\r\n]+|\s+(?!\S)|\s+)";
const char* const kLlama3 =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";

const PreSpec* find_pre(const std::string& pre) {
  // DeepSeek V3 / R1 / V3.1: exactly the strings of DeepSeek-V3's tokenizer.json (CR and LF as characters).
  static const PreSpec v3{{"\\p{N}{1,3}", "[一-龥぀-ゟ゠-ヿ]+",
                           "[!\"#$%&'()*+,\\-./:;<=>?@\\[\\\\\\]^_`{|}~][A-Za-z]+|[^\r\n\\p{L}\\p{P}\\p{S}]?[\\p{L}\\p{M}]+|"
                           " ?[\\p{P}\\p{S}]+[\r\n]*|\\s*[\r\n]+|\\s+(?!\\S)|\\s+"}};
  // DeepSeek LLM / V2 / V2-Lite / V2.5 / Coder-V2.
  static const PreSpec llm{{R"([\r\n])", kDeepseekLlmLetters, R"(\s?[!-/:-~\x{FF01}-\x{FF0F}\x{FF1A}-\x{FF5E}\x{2018}-\x{201F}\x{3000}-\x{3002}]+)",
                            R"(\s+$)", kCjkHangul, R"(\p{N}+)"}};
  // DeepSeek Coder (1.x).
  static const PreSpec coder{{R"([\r\n])", R"(\s?\p{L}+)", R"(\s?\p{P}+)", kCjkHangul, R"(\p{N})"}};
  // Qwen2 / 2.5 / 3, R1-Distill-Qwen, R1-0528-Qwen3 (their tokenizer.json normalizes to NFC first).
  static const PreSpec qwen2{{kQwen2}, false, false, true};
  static const PreSpec qwen35{{kQwen35}};
  // R1-Distill-Llama (Llama 3 tokenizer: ignore_merges, BOS added by default).
  static const PreSpec llama3{{kLlama3}, true, true};
  // llama.cpp's fallback for files converted without a recognised pre-tokenizer (also the tiny test fixtures').
  static const PreSpec fallback{{R"([\p{P}\$\+<=>\^~\|]+)",
                                 R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S))",
                                 R"(\p{N}+)", R"([0-9][0-9][0-9])"}};
  if (pre == "deepseek-v3") return &v3;
  if (pre == "deepseek-llm") return &llm;
  if (pre == "deepseek-coder") return &coder;
  if (pre == "qwen2" || pre == "deepseek-r1-qwen") return &qwen2;
  if (pre == "qwen35") return &qwen35;
  if (pre == "llama-bpe" || pre == "llama3" || pre == "llama-v3") return &llama3;
  if (pre == "default") return &fallback;
  return nullptr;
}

json pre_tokenizer_json(const PreSpec& spec) {
  json seq = json::array();
  for (const std::string& r : spec.regexes) seq.push_back(split(r));
  seq.push_back({{"type", "ByteLevel"}, {"add_prefix_space", false}, {"trim_offsets", true}, {"use_regex", false}});
  return {{"type", "Sequence"}, {"pretokenizers", std::move(seq)}};
}

// Typed access to one GGUF file's metadata with errors naming the file and the key.
struct Meta {
  const io::GgufFile& f;
  const std::string& src;

  const io::GgufValue& need(const std::string& key, const char* what) const {
    const io::GgufValue* v = f.find(key);
    DS_CHECK(v, src, ": metadata key '", key, "' is missing (", what, ")");
    return *v;
  }
  std::string string(const io::GgufValue& v, const std::string& key) const {
    DS_CHECK(v.type == io::GgufType::STRING, src, ": metadata key '", key, "' must be a string, found ",
             io::gguf_type_name(v.type));
    return v.s;
  }
  const std::vector<std::string>& strings(const io::GgufValue& v, const std::string& key) const {
    DS_CHECK(v.type == io::GgufType::ARRAY && (v.elem == io::GgufType::STRING || v.size() == 0), src,
             ": metadata key '", key, "' must be an array of strings, found ", io::gguf_type_name(v.type),
             v.type == io::GgufType::ARRAY ? std::string(" of ") + io::gguf_type_name(v.elem) : std::string());
    return v.strs;
  }
  const std::vector<int64_t>& ints(const io::GgufValue& v, const std::string& key) const {
    const bool int_elem = v.elem != io::GgufType::F32 && v.elem != io::GgufType::F64 &&
                          v.elem != io::GgufType::STRING && v.elem != io::GgufType::BOOL;
    DS_CHECK(v.type == io::GgufType::ARRAY && (int_elem || v.size() == 0), src, ": metadata key '", key,
             "' must be an array of integers, found ", io::gguf_type_name(v.type),
             v.type == io::GgufType::ARRAY ? std::string(" of ") + io::gguf_type_name(v.elem) : std::string());
    return v.ints;
  }
  std::optional<int64_t> opt_int(const std::string& key) const {
    const io::GgufValue* v = f.find(key);
    if (!v) return std::nullopt;
    DS_CHECK(v->is_int(), src, ": metadata key '", key, "' must be an integer, found ", io::gguf_type_name(v->type));
    DS_CHECK(v->type != io::GgufType::U64 || v->u <= uint64_t(INT64_MAX), src, ": metadata key '", key, "' = ", v->u,
             " is out of range");
    return v->i;
  }
  std::optional<bool> opt_bool(const std::string& key) const {
    const io::GgufValue* v = f.find(key);
    if (!v) return std::nullopt;
    DS_CHECK(v->type == io::GgufType::BOOL, src, ": metadata key '", key, "' must be a bool, found ",
             io::gguf_type_name(v->type));
    return v->i != 0;
  }
};

bool gguf_has_tokenizer(const io::GgufFile& f) {
  const io::GgufValue* m = f.find("tokenizer.ggml.model");
  return m && !(m->type == io::GgufType::STRING && (m->s == "none" || m->s == "no_vocab"));
}

}  // namespace

json pre_tokenizer_for_gguf_pre(const std::string& pre) {
  const PreSpec* spec = find_pre(pre);
  return spec ? pre_tokenizer_json(*spec) : json();
}

TokenizerJson tokenizer_json_from_gguf(const io::GgufFile& f) {
  const std::string& src = f.path();
  const Meta m{f, src};

  const std::string model = m.string(m.need("tokenizer.ggml.model", "the file carries no tokenizer"),
                                     "tokenizer.ggml.model");
  DS_CHECK(model == "gpt2", src, ": tokenizer.ggml.model = '", io::show_text(model),
           "' is not supported: only 'gpt2' (byte-level BPE, the DeepSeek tokenizers)",
           model == "llama" ? "; 'llama' is a SentencePiece vocabulary" : "",
           "; put the model's tokenizer.json beside the file to use it instead");
  const std::string pre = m.string(m.need("tokenizer.ggml.pre", "the pre-tokenizer name"), "tokenizer.ggml.pre");
  const PreSpec* spec = find_pre(pre);
  DS_CHECK(spec, src, ": tokenizer.ggml.pre = '", io::show_text(pre),
           "' is not a known pre-tokenizer (deepseek-v3, deepseek-llm, deepseek-coder, qwen2, deepseek-r1-qwen, "
           "qwen35, llama-bpe, llama3, llama-v3, default); put the model's tokenizer.json beside the file to use it "
           "instead");

  const auto& tokens = m.strings(m.need("tokenizer.ggml.tokens", "the vocabulary"), "tokenizer.ggml.tokens");
  const auto& types = m.ints(m.need("tokenizer.ggml.token_type", "the token types"), "tokenizer.ggml.token_type");
  const auto& merges = m.strings(m.need("tokenizer.ggml.merges", "the BPE merges"), "tokenizer.ggml.merges");
  DS_CHECK(!tokens.empty(), src, ": tokenizer.ggml.tokens is empty");
  DS_CHECK(tokens.size() < (size_t{1} << 24), src, ": tokenizer.ggml.tokens has ", tokens.size(),
           " entries (at most 2^24)");
  DS_CHECK(types.size() == tokens.size(), src, ": tokenizer.ggml.token_type has ", types.size(),
           " entries but tokenizer.ggml.tokens has ", tokens.size());

  json vocab = json::object();
  json added = json::array();
  for (size_t i = 0; i < tokens.size(); ++i) {
    const std::string& t = tokens[i];
    const int64_t type = types[i];
    // Older converters typed the [PAD<id>] fill user-defined; it is no token of the model either.
    if (type == kUserDefined && t.size() > 5 && t.rfind("[PAD", 0) == 0 && t == "[PAD" + std::to_string(i) + "]")
      continue;
    switch (type) {
      case kNormal: {
        auto [it, fresh] = vocab.emplace(t, int64_t(i));
        DS_CHECK(fresh, src, ": tokenizer.ggml.tokens[", i, "] = '", io::show_text(t),
                 "' repeats the text of token ", it.value().get<int64_t>());
        break;
      }
      case kUnknown:
      case kControl:
      case kUserDefined: {
        const bool special = type != kUserDefined;
        added.push_back({{"id", int64_t(i)}, {"content", t}, {"single_word", false}, {"lstrip", false},
                         {"rstrip", false}, {"normalized", false}, {"special", special}});
        break;
      }
      case kUnused:
        break;  // [PADn] fill up to the model's vocab_size: an unknown id, as in the HF tokenizer
      case kByte:
        fail(src, ": tokenizer.ggml.token_type[", i, "] = 6 (a byte token, '", io::show_text(t),
             "'): byte tokens belong to SentencePiece vocabularies, not to a gpt2 (byte-level BPE) one");
      default:
        fail(src, ": tokenizer.ggml.token_type[", i, "] = ", type,
             " is not a token type (1 normal, 2 unknown, 3 control, 4 user-defined, 5 unused, 6 byte)");
    }
  }

  TokenizerJson out;
  out.tokenizer = {
      {"version", "1.0"},
      {"normalizer", spec->nfc ? json{{"type", "NFC"}} : json()},
      {"pre_tokenizer", pre_tokenizer_json(*spec)},
      {"added_tokens", std::move(added)},
      {"decoder", {{"type", "ByteLevel"}, {"add_prefix_space", true}, {"trim_offsets", true}, {"use_regex", true}}},
      {"model",
       {{"type", "BPE"}, {"dropout", nullptr}, {"unk_token", nullptr}, {"continuing_subword_prefix", nullptr},
        {"end_of_word_suffix", nullptr}, {"fuse_unk", false}, {"byte_fallback", false},
        {"ignore_merges", spec->ignore_merges}, {"vocab", std::move(vocab)}, {"merges", json(merges)}}},
  };

  json cfg = json::object();
  auto special_id = [&](const char* key, const char* field) {
    const std::optional<int64_t> id = m.opt_int(key);
    if (!id) return;
    DS_CHECK(*id >= 0 && size_t(*id) < tokens.size(), src, ": ", key, " = ", *id, " is outside the vocabulary of ",
             tokens.size(), " tokens");
    DS_CHECK(types[size_t(*id)] != kUnused, src, ": ", key, " = ", *id, " names an unused token ('",
             io::show_text(tokens[size_t(*id)]), "')");
    cfg[field] = tokens[size_t(*id)];
  };
  special_id("tokenizer.ggml.bos_token_id", "bos_token");
  special_id("tokenizer.ggml.eos_token_id", "eos_token");
  cfg["add_bos_token"] = m.opt_bool("tokenizer.ggml.add_bos_token").value_or(spec->add_bos_default);
  if (const io::GgufValue* ct = f.find("tokenizer.chat_template"))
    cfg["chat_template"] = m.string(*ct, "tokenizer.chat_template");
  out.config = std::move(cfg);
  return out;
}

namespace {

Tokenizer build(const io::GgufFile& f) {
  const TokenizerJson j = tokenizer_json_from_gguf(f);
  try {
    return Tokenizer(j.tokenizer, j.config);
  } catch (const ds::Error& e) {
    std::string msg = e.what();
    if (msg.rfind("tokenizer.json: ", 0) == 0) msg = msg.substr(16);
    fail(f.path(), ": the tokenizer in its tokenizer.ggml.* metadata is invalid: ", msg);
  }
}

// The folder of a GGUF file ("." for a bare file name).
std::string folder_of(const std::string& file) {
  const std::filesystem::path dir = std::filesystem::path(file).parent_path();
  return dir.empty() ? std::string(".") : dir.string();
}

bool has_tokenizer_json(const std::string& dir) {
  return std::filesystem::is_regular_file(std::filesystem::path(dir) / "tokenizer.json");
}

}  // namespace

Tokenizer tokenizer_from_gguf(const std::string& gguf_path) { return build(*io::GgufFile::open(gguf_path)); }

bool is_gguf_file(const std::string& model) { return std::filesystem::is_regular_file(model); }

Tokenizer load_tokenizer(const std::string& model) {
  if (!is_gguf_file(model)) return Tokenizer::from_dir(model);
  const std::string dir = folder_of(model);
  if (has_tokenizer_json(dir)) return Tokenizer::from_dir(dir);
  const auto f = io::GgufFile::open(model);
  DS_CHECK(gguf_has_tokenizer(*f), model, ": the file carries no tokenizer (no tokenizer.ggml.model, or 'none') and ",
           dir, " has no tokenizer.json");
  return build(*f);
}

std::optional<Tokenizer> try_load_tokenizer(const std::string& model) {
  if (!is_gguf_file(model)) {
    if (!has_tokenizer_json(model)) return std::nullopt;
    return Tokenizer::from_dir(model);
  }
  const std::string dir = folder_of(model);
  if (has_tokenizer_json(dir)) return Tokenizer::from_dir(dir);
  const auto f = io::GgufFile::open(model);
  if (!gguf_has_tokenizer(*f)) return std::nullopt;
  return build(*f);
}

}  // namespace ds::tok
