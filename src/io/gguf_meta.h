// SPDX-License-Identifier: MIT
// GGUF metadata of a model as llama.cpp's convert_hf_to_gguf.py writes it (DeepseekV2Model: arch `deepseek2`;
// Qwen2Model / LlamaModel / Qwen3Model: `qwen2` / `llama` / `qwen3`), for GgufWriter: the inverse of
// io/gguf_config.cpp (config) and tokenizer/gguf_vocab.cpp (tokenizer).
#pragma once
#include <cstdint>
#include <string>

#include "io/config.h"
#include "io/gguf_writer.h"
#include "io/json_util.h"

namespace ds::io {

// general.architecture = deepseek2, general.type = model, general.name, then the `deepseek2.*` hyperparameters:
// block_count, context_length, embedding_length, feed_forward_length, attention.head_count, head_count_kv = 1 (MLA
// as MQA), rope.freq_base, attention.layer_norm_rms_epsilon, expert_count / expert_used_count /
// expert_group_count / expert_group_used_count / expert_gating_func (1 softmax, 2 sigmoid) for MoE models,
// leading_dense_block_count, vocab_size, attention.q_lora_rank, kv_lora_rank, key_length = kv_lora + rope,
// value_length = kv_lora, key_length_mla = nope + rope, value_length_mla = v, expert_feed_forward_length,
// expert_shared_count, expert_weights_scale, expert_weights_norm, rope.dimension_count and, for YaRN,
// rope.scaling.{type, factor, original_context_length, yarn_beta_fast, yarn_beta_slow, yarn_log_multiplier =
// 0.1 * mscale_all_dim} (+ yarn_attn_factor when the config names an attention_factor).
// Differences from the converter, each so that more files load: attention.q_lora_rank is written as 0 for models
// without q_lora (the converter omits it; llama.cpp then requires the key unless the model has 26/27 layers), and
// expert_weights_scale / expert_weights_norm / expert_group_count are written with their defaults when the config
// leaves them out (the values llama.cpp and deepseek.cpp assume anyway). MTP layers are not written (the converter
// skips them too), so block_count is num_hidden_layers and no nextn_predict_layers key is written.
// general.file_type (`file_type`: llama.cpp's llama_ftype) goes where the converter writes it, and
// general.quantization_version = 2 last, as convert_hf_to_gguf.py and llama-quantize both write it.
void add_deepseek2_metadata(GgufWriter& w, const ModelConfig& c, const std::string& name, uint32_t file_type);

// The dense distills (TextModel.set_gguf_parameters, then LlamaModel's additions), in the converter's order:
// general.architecture, general.type = model, general.name, then `<arch>.` block_count, context_length,
// embedding_length, feed_forward_length, attention.head_count, attention.head_count_kv, rope.scaling.* (linear:
// type, factor; yarn: type, factor, original_context_length, then yarn_ext_factor / yarn_attn_factor (the config's
// attention_factor, else attn_factor) / yarn_beta_fast / yarn_beta_slow for the fields the config's rope_scaling
// has; llama3 scaling is the rope_freqs tensor instead), rope.freq_base, attention.layer_norm_rms_epsilon,
// attention.key_length / value_length (when config.json names head_dim, and always for qwen3, whose class default
// 128 need not be hidden / heads), general.file_type, for llama vocab_size and rope.dimension_count, and
// general.quantization_version = 2. `config_json` is the config.json `c` was parsed from (the converter writes some
// keys only for fields the file has); c's numbers win (--layers changes block_count).
void add_dense_metadata(GgufWriter& w, const ModelConfig& c, const Json& config_json, const std::string& name,
                        uint32_t file_type);

// convert_hf_to_gguf.py's vocabulary for a Hugging Face byte-level BPE tokenizer (_set_vocab_gpt2 = get_vocab_base +
// gguf.SpecialVocab(load_merges=True)), in its key order: tokenizer.ggml.model = gpt2, .pre = `pre`, .tokens and
// .token_type for ids 0 .. vocab_size-1 (vocabulary and added tokens; ids without a token become "[PAD<id>]", type
// unused; added tokens are control (3) when special or when they look special (<|...|>, <｜...｜>, ...), else
// user-defined (4) with U+2581 shown as a space), then SpecialVocab's: .merges ("a b"; spaces inside a part of the
// list form written as U+0120), the bos / eos / unk / sep / pad / mask ids (tokenizer_config.json's `<x>_token`
// matched to an added token, else config.json's `<x>_token_id`), add_bos / add_eos / add_sep flags, and
// tokenizer.chat_template (tokenizer_config.json's, else `chat_template_file` when given: chat_template.jinja).
// `config_json` may be null. Throws ds::Error naming `source` for a tokenizer.json that is not a BPE model.
void add_gpt2_tokenizer_metadata(GgufWriter& w, const Json& tokenizer_json, const Json& tokenizer_config,
                                 const Json& config_json, int64_t vocab_size, const std::string& pre,
                                 const std::string& chat_template_file, const std::string& source);

// A placeholder byte-level vocabulary for a checkpoint without a tokenizer (test fixtures, random weights), so that
// llama.cpp can load the file (it requires a vocabulary): gpt2 model, pre "default", `bos` and `eos` as control
// tokens "<|bos|>" / "<|eos|>", the 256 byte tokens of GPT-2's byte-to-unicode map on the lowest other ids, "<x<id>>"
// fillers up to vocab_size, no merges, add_bos / add_eos false. Token ids are the model's; text tokenised through
// it is meaningless. Needs vocab_size >= 258; returns false (nothing written) otherwise.
bool add_placeholder_vocab(GgufWriter& w, int64_t vocab_size, int64_t bos, int64_t eos);

}  // namespace ds::io
