// SPDX-License-Identifier: MIT
// `deepseek quantize`: a Hugging Face checkpoint (bf16 or FP8, FP8 dequantised exactly first) or random weights of a
// config's shapes -> one GGUF file that loads in deepseek.cpp and in llama.cpp: DeepSeek V2/V3 as `deepseek2`, the
// dense distills as `qwen2` (R1-Distill-Qwen), `llama` (R1-Distill-Llama) or `qwen3` (R1-0528-Qwen3).
//
// The file holds what convert_hf_to_gguf.py followed by llama-quantize (no importance matrix) would write:
// metadata and tensor layout of io/gguf_meta.h and model/gguf_export.h, tensor types by llama.cpp's rules for the
// chosen file type, blocks quantised by base/quantize.h (ggml's reference quantisers). The vocabulary comes from the
// checkpoint's tokenizer.json / tokenizer_config.json when present (tokenizer.ggml.pre: recognised from the
// pre-tokenizer's regexes, or given); without one a placeholder byte-level vocabulary is written so that llama.cpp
// can still load the file (token ids only), and the result says so.
//
// Streaming: the header is written first (sizes follow from shapes and types), then each tensor in slabs of rows
// computed in parallel (at most ~64 MiB of output plus a few MiB of fp32 per thread in memory), written to
// OUT.tmp and renamed to OUT once complete; OUT.tmp is removed on failure.
#pragma once
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "base/dtype.h"

namespace ds::rt {

struct ConvertOptions {
  std::string model;  // Hugging Face checkpoint folder (config.json + safetensors); unused with `random`
  std::string out;    // the .gguf to write
  std::string type = "Q8_0";  // a model::quant_recipes() name (case-insensitive)
  int threads = 0;            // 0: all cores
  // Random weights of a config's shapes (as `deepseek bench --random-weights` builds them).
  bool random = false;
  std::string config;         // config.json for `random`
  int64_t layers = 0;         // keep the first N decoder layers (0: all)
  DType random_dtype = DType::BF16;  // BF16 or F8_E4M3 linear weights
  std::string tokenizer_pre;  // tokenizer.ggml.pre; empty: recognised from tokenizer.json
};

struct ConvertProgress {
  size_t tensor = 0, tensors = 0;  // tensors completed, of
  uint64_t bytes = 0, total = 0;   // tensor data bytes written, of
  std::string name;                // the tensor being written
  DType type = DType::F32;
};
using ConvertProgressFn = std::function<void(const ConvertProgress&)>;

struct ConvertResult {
  std::string path;
  size_t tensors = 0;
  uint64_t bytes = 0;                    // file size
  std::map<std::string, int> type_counts;  // ggml type name -> tensors
  std::vector<std::string> notes;          // what the user should know (placeholder vocabulary, MTP layer skipped)
};

// Writes the file. Throws ds::Error naming the file, tensor or option on any failure (OUT.tmp is removed).
ConvertResult convert_to_gguf(const ConvertOptions& o, const ConvertProgressFn& progress = nullptr);

// tokenizer.ggml.pre for a tokenizer.json's pre_tokenizer (the llama.cpp names deepseek.cpp and llama.cpp both
// know: deepseek-v3, deepseek-llm, deepseek-coder, qwen2, llama-bpe; qwen2's regex with a post-processor that adds
// a BOS, as R1-Distill-Qwen's tokenizer has, is deepseek-r1-qwen, the converter's name for it); empty when not
// recognised.
std::string detect_tokenizer_pre(const std::string& tokenizer_json_path);

// `--help` text for the types: one line each.
std::string quantize_types_help();

}  // namespace ds::rt
