// SPDX-License-Identifier: MIT
// `deepseek quantize --model HF_DIR --out FILE.gguf --type TYPE`: a Hugging Face checkpoint (DeepSeek V2/V3, bf16 or
// FP8; the qwen2 / llama / qwen3 distills) or random weights of a config's shapes -> a GGUF file for deepseek.cpp
// and llama.cpp (runtime/gguf_convert.h).
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <string>

#include "apps/deepseek/cli_common.h"
#include "apps/deepseek/commands.h"
#include "base/error.h"
#include "runtime/gguf_convert.h"

namespace ds::app {

namespace {

// A one-line bar on stderr, redrawn at most 10 times a second and for every finished tensor.
class Bar {
 public:
  void operator()(const rt::ConvertProgress& p) {
    const auto now = std::chrono::steady_clock::now();
    const bool last = p.tensor == p.tensors;
    if (!last && p.tensor == shown_ && now - at_ < std::chrono::milliseconds(100)) return;
    at_ = now;
    shown_ = p.tensor;
    const int width = 30, filled = p.total ? int(double(width) * double(p.bytes) / double(p.total)) : width;
    const bool gb = p.total >= 1000000000;
    const double unit = gb ? 1e9 : 1e6;
    std::fprintf(stderr, "\rquantizing [%.*s%*s] %zu/%zu tensors %.2f/%.2f %s %-40.40s", filled,
                 "##############################", width - filled, "", p.tensor, p.tensors, double(p.bytes) / unit,
                 double(p.total) / unit, gb ? "GB" : "MB",
                 last ? "" : (p.name + " " + std::string(dtype_name(p.type))).c_str());
    if (last) std::fprintf(stderr, "\n");
    std::fflush(stderr);
  }

 private:
  size_t shown_ = size_t(-1);
  std::chrono::steady_clock::time_point at_{};
};

}  // namespace

int cmd_quantize(int argc, char** argv) {
  const std::string desc =
      "Write a GGUF file from a Hugging Face checkpoint: DeepSeek V2/V3/R1 (llama.cpp's `deepseek2` format) or a "
      "dense R1 distill (`qwen2`, `llama`, `qwen3`); bf16 or FP8 safetensors (FP8 weights are dequantised exactly "
      "first). The file loads in deepseek.cpp (--model FILE.gguf) and in llama.cpp. Tensor names, shapes and "
      "metadata are those of llama.cpp's convert_hf_to_gguf.py (Llama's q/k rows permuted for its RoPE, llama3 "
      "scaling as the rope_freqs tensor); tensor types follow llama-quantize's rules for the chosen type (without an "
      "importance matrix) and blocks are quantised with ggml's reference algorithms, so a file equals "
      "`convert_hf_to_gguf.py --outtype f32` followed by `llama-quantize` of the same type. The MTP layer is not "
      "written (llama.cpp's converter skips it too). The vocabulary comes from tokenizer.json / "
      "tokenizer_config.json in the folder; without them a placeholder vocabulary is written (token ids only).\n\n"
      "types (--type):\n" +
      rt::quantize_types_help() +
      "  Norms, the router (ffn_gate_inp) and its bias stay F32. K-quants need rows that are a multiple of 256: other "
      "tensors fall back as llama.cpp does (Q4_K -> Q5_0, Q5_K -> Q5_1, Q6_K -> Q8_0, F16 when not a multiple of 32; "
      "DeepSeek's attn_k_b rows are qk_nope_head_dim long).";
  CLI::App app{desc, "deepseek quantize"};
  rt::ConvertOptions o;
  std::string dtype = "bf16";
  app.add_option("-m,--model", o.model, "Hugging Face checkpoint folder (config.json + *.safetensors)");
  app.add_option("-o,--out", o.out, "the .gguf file to write (written as FILE.tmp, renamed when complete)")->required();
  app.add_option("--type", o.type, "file type: F32, F16, BF16, Q8_0, Q6_K, Q5_K_M, Q5_K_S, Q4_K_M, Q4_K_S, Q5_0, Q4_0")
      ->capture_default_str();
  app.add_option("-t,--threads", o.threads, "threads quantising (0 = all cores)")->capture_default_str();
  app.add_option("--config", o.config, "config.json of the shape to build (with --random-weights)");
  app.add_flag("--random-weights", o.random, "random weights of the config's shapes (as `deepseek bench` builds them)");
  app.add_option("--layers", o.layers, "with --random-weights: keep only the first N decoder layers");
  app.add_option("--dtype", dtype, "with --random-weights: dtype of the random linear weights, bf16 | fp8")
      ->capture_default_str();
  app.add_option("--tokenizer-pre", o.tokenizer_pre,
                 "tokenizer.ggml.pre to record (default: recognised from tokenizer.json; deepseek-v3, deepseek-llm, "
                 "deepseek-coder, qwen2, deepseek-r1-qwen, llama-bpe)");
  CLI11_PARSE(app, argc, argv);
  DS_CHECK(o.random == !o.config.empty(), "give either --model HF_DIR or --random-weights --config CONFIG.json");
  DS_CHECK(!o.random || o.model.empty(), "--model and --random-weights exclude each other");
  DS_CHECK(o.random || o.layers == 0, "--layers applies to --random-weights only");
  DS_CHECK(dtype == "bf16" || dtype == "fp8", "--dtype '", dtype, "' is not one of: bf16, fp8");
  o.random_dtype = dtype == "fp8" ? DType::F8_E4M3 : DType::BF16;

  Bar bar;
  const auto t0 = std::chrono::steady_clock::now();
  const rt::ConvertResult r =
      rt::convert_to_gguf(o, isatty(2) ? rt::ConvertProgressFn([&bar](const rt::ConvertProgress& p) { bar(p); })
                                       : rt::ConvertProgressFn());
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  for (const std::string& n : r.notes) std::fprintf(stderr, "note: %s\n", n.c_str());
  std::string types;
  for (const auto& [t, n] : r.type_counts) types += (types.empty() ? "" : ", ") + t + " x" + std::to_string(n);
  std::fprintf(stderr, "wrote %s: %zu tensors (%s), %.3f GB in %.1f s\n", r.path.c_str(), r.tensors, types.c_str(),
               double(r.bytes) / 1e9, secs);
  return 0;
}

}  // namespace ds::app
