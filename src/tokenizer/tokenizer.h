// SPDX-License-Identifier: MIT
// Tokenizer for DeepSeek (byte-level BPE) models and their distills (Qwen2/3, Llama 3 vocabularies): loads
// tokenizer.json + tokenizer_config.json from a model folder; encode with or without special-token parsing; decode.
// Byte-exact with Hugging Face `tokenizers`.
#pragma once
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "tokenizer/added_tokens.h"

namespace ds::tok {

class BpeModel;
class Normalizer;
class PreTokenizer;

class Tokenizer {
 public:
  // Loads DIR/tokenizer.json and (optional) DIR/tokenizer_config.json. Throws ds::Error naming the file.
  static Tokenizer from_dir(const std::string& dir);
  // From JSON text (config may be empty). Throws ds::Error only (also for JSON syntax errors).
  static Tokenizer from_json_text(std::string_view tokenizer_json, std::string_view config_json = {});
  // From already-parsed JSON (config may be null). Throws ds::Error only: wrong field types too (messages start
  // "tokenizer.json: "). Ids must be dense: each below the number of entries (vocabulary + added tokens) plus a
  // slack of max(1024, entries / 8), so a hostile file cannot size the id tables far beyond its contents.
  Tokenizer(const nlohmann::json& tokenizer_json, const nlohmann::json& config);
  ~Tokenizer();
  Tokenizer(Tokenizer&&) noexcept;
  Tokenizer& operator=(Tokenizer&&) noexcept;

  // Text -> ids. Input that is not valid UTF-8 is first repaired: each ill-formed subsequence becomes
  // U+FFFD (as Python's errors="replace" would). parse_special=true matches added tokens (HF default);
  // false encodes their text as ordinary text (no control token can be injected). Never adds BOS.
  std::vector<int32_t> encode(std::string_view text, bool parse_special) const;
  void encode_append(std::string_view text, bool parse_special, std::vector<int32_t>& out) const;

  // Ids -> text (HF decode, skip_special_tokens=false): added tokens as their content, the rest through the
  // ByteLevel decoder, then lossy UTF-8 (U+FFFD). Unknown ids are skipped (as HF does).
  std::string decode(const std::vector<int32_t>& ids, bool skip_special = false) const;
  // The raw bytes of one token (may be a partial UTF-8 character); empty for unknown ids.
  std::string token_to_piece(int32_t id) const;
  // The token's text as stored in the vocabulary (ByteLevel form), empty for unknown ids.
  std::string id_to_token(int32_t id) const;
  // Id of a token given by its text (added-token content, or ByteLevel vocabulary text); -1 if absent.
  int32_t token_to_id(std::string_view token) const;
  bool is_special(int32_t id) const;
  bool is_added(int32_t id) const { return added_.find_id(id) != nullptr; }
  bool is_valid_id(int32_t id) const;

  int32_t bos_id() const { return bos_id_; }
  int32_t eos_id() const { return eos_id_; }
  // Whether HF's encode(add_special_tokens=True) starts with bos_id(): tokenizer_config.json's add_bos_token when it
  // has one (transformers' Llama tokenizers rebuild their post-processor from it), otherwise the tokenizer.json
  // post-processor's (a TemplateProcessing whose single sequence starts with a special token, as Llama 3's).
  bool add_bos() const { return add_bos_; }
  const std::string& bos_token() const { return bos_token_; }
  const std::string& eos_token() const { return eos_token_; }
  // One past the largest id (model vocabulary and added tokens).
  size_t vocab_size() const { return vocab_size_; }
  // The chat template from tokenizer_config.json ("" if none).
  const std::string& chat_template() const { return chat_template_; }
  const AddedVocabulary& added_tokens() const { return added_; }

 private:
  void init(const nlohmann::json& tokenizer_json, const nlohmann::json& config);
  void encode_text(std::string_view text, std::vector<int32_t>& out) const;
  // Normalizes a piece of input that holds no raw added token, then matches the normalized added tokens in it.
  void encode_normalized(std::string_view text, bool parse_special, std::vector<int32_t>& out) const;

  std::unique_ptr<BpeModel> bpe_;
  std::unique_ptr<Normalizer> norm_;
  std::unique_ptr<PreTokenizer> pre_;
  AddedVocabulary added_;
  int32_t bos_id_ = -1, eos_id_ = -1;
  bool add_bos_ = false;
  std::string bos_token_, eos_token_, chat_template_;
  size_t vocab_size_ = 0;
};

}  // namespace ds::tok
