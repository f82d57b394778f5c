// SPDX-License-Identifier: MIT
// Where a --model argument's tokenizer comes from, and the tokenizer embedded in a GGUF file.
//
// A folder: its tokenizer.json (+ tokenizer_config.json). A .gguf file: the tokenizer.json beside it when there is
// one, otherwise the file's `tokenizer.ggml.*` metadata (llama.cpp's converters write it from the same
// tokenizer.json). The metadata is turned back into the tokenizer.json / tokenizer_config.json objects it came
// from and handed to the ordinary Tokenizer constructor, so added tokens, byte-level decoding and chat templates
// behave exactly as for a folder:
//
//   tokenizer.ggml.model       must be "gpt2" (byte-level BPE); "llama" (SentencePiece) and others are refused
//   tokenizer.ggml.pre         the pre-tokenizer name llama.cpp recorded -> that model's HF pre_tokenizer Splits
//                              (deepseek-v3, deepseek-llm, deepseek-coder, qwen2 / deepseek-r1-qwen with HF's
//                              NFC normalizer, qwen35, llama-bpe / llama3 / llama-v3, default); unknown names are
//                              refused
//   tokenizer.ggml.tokens      token texts in id order; token_type: 1 normal -> BPE vocabulary, 3 control and
//                              2 unknown -> special added tokens, 4 user-defined -> added tokens, 5 unused (the
//                              [PADn] fill up to the model's vocab_size, which older converters typed 4) ->
//                              unknown ids, as in the HF tokenizer; 6 byte -> refused
//   tokenizer.ggml.merges      "a b" in rank order
//   bos/eos_token_id, add_bos_token, tokenizer.chat_template -> tokenizer_config.json's bos/eos/add_bos/template
//
// What a GGUF cannot carry: HF's `special` flag of added tokens that the converter marked control because they look
// special (`<｜User｜>` and 13 others in DeepSeek-V3 are special here, not in tokenizer.json; this only matters to
// decode(skip_special)), and the `normalized` flag (all added tokens here are matched in one leftmost-longest pass).
#pragma once
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "tokenizer/tokenizer.h"

namespace ds::io {
class GgufFile;
}

namespace ds::tok {

// tokenizer.json and tokenizer_config.json equivalents of a GGUF's tokenizer metadata.
struct TokenizerJson {
  nlohmann::json tokenizer;
  nlohmann::json config;
};

// Throws ds::Error naming the file and the key (missing or mistyped keys, model other than gpt2, unknown pre,
// tokens / token_type length mismatch, bad token types, out-of-range bos/eos ids).
TokenizerJson tokenizer_json_from_gguf(const io::GgufFile& f);

// tokenizer.json's "pre_tokenizer" object for a tokenizer.ggml.pre name; null when the name is not known.
nlohmann::json pre_tokenizer_for_gguf_pre(const std::string& pre);

// The tokenizer of a GGUF file's metadata (the file is mapped, its tensors are not read).
Tokenizer tokenizer_from_gguf(const std::string& gguf_path);

// True when `model` names a GGUF file (a regular file, not a folder).
bool is_gguf_file(const std::string& model);

// The tokenizer of a --model argument (folder or .gguf, see above). Throws ds::Error naming what is missing.
Tokenizer load_tokenizer(const std::string& model);

// As load_tokenizer, but nullopt when the model has no tokenizer at all (a folder without tokenizer.json, a GGUF
// without tokenizer.json beside it and without tokenizer.ggml.model, or with tokenizer.ggml.model = "none"). A
// tokenizer that is present but broken still throws.
std::optional<Tokenizer> try_load_tokenizer(const std::string& model);

}  // namespace ds::tok
