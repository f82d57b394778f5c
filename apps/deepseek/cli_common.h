// SPDX-License-Identifier: MIT
// Flags shared by the subcommands that compute (--backend, --threads, --precision, --kv-dtype, --ctx, sampling).
#pragma once
#include <CLI/CLI.hpp>

#include <memory>
#include <string>

#include "runtime/engine.h"
#include "runtime/sampler.h"
#include "runtime/speculative.h"

namespace ds::app {

struct ComputeFlags {
  std::string backend = "cpu";
  int threads = 0;
  std::string precision = "fast";
  std::string kv_dtype = "f32";
  int64_t ctx = 0;
  bool verbose = false;
  std::string load = "auto";
  int draft = -1;
  int tp = 0, ep = 0;
  std::string ep_combine = "gather";
  std::string indexer_numerics = "fp32";

  void add(CLI::App& app) {
    app.add_option("--backend", backend, "compute backend: cpu | ref (scalar reference) | cuda")->capture_default_str();
    app.add_option("-t,--threads", threads, "CPU threads (0 = all cores)")->capture_default_str();
    app.add_option("--precision", precision,
                   "f32: fp32 activations, weights dequantised exactly (for comparison with references); "
                   "fast: bf16 products where the hardware has them, int8 activation blocks on GGUF block weights "
                   "(Q8_0, Q4_K, ...) for the routed experts and lm_head, fp32 ahead of the routers; "
                   "q8: as fast, but every product on block weights takes int8 activations, as llama.cpp does "
                   "(faster on GGUF files; router inputs rounded)")->capture_default_str();
    app.add_option("--kv-dtype", kv_dtype,
                   "KV cache rows: f32 (exact), bf16 (half the bytes), fp8 (e4m3 with one fp32 scale per 128 values, "
                   "about a quarter): fewer bytes read per decode step at long context; bf16 and fp8 need "
                   "--precision fast or q8")->capture_default_str();
    app.add_option("-c,--ctx", ctx, "context size in tokens (0 = min(max_position_embeddings, 4096))");
    app.add_option("--load", load,
                   "cpu: copy = weights copied into huge-page memory at load (fastest decode; the checkpoint's pages "
                   "are released as each tensor is copied), mmap = computed from the file mapping (models larger "
                   "than RAM), auto = copy when the weights fit in 80% of the available memory")
        ->capture_default_str();
    app.add_flag("-v,--verbose", verbose, "log progress and timings to stderr");
    app.add_option("--tp", tp, "under mpirun: ranks the attention heads, MLPs and lm_head are split over: 1 (each "
                   "rank computes them whole) or the number of ranks (0 = the number of ranks; docs/SCALING.md)")
        ->capture_default_str();
    app.add_option("--ep", ep, "under mpirun: ranks the routed experts are split over: 1 (each rank holds all) or "
                   "the number of ranks (0 = the number of ranks)")->capture_default_str();
    app.add_option("--ep-combine", ep_combine, "under mpirun: how the experts' outputs are joined: gather (every "
                   "expert row to every rank, added in the one-process order: bitwise the one-process result) or sum "
                   "(each rank's partial sum, then summed over ranks: fewer bytes, last bits re-associated)")
        ->capture_default_str();
    app.add_option("--indexer-numerics", indexer_numerics,
                   "DeepSeek-V3.2's indexer: fp32 (the model's exact function, as Hugging Face computes it) or fp8 "
                   "(as DeepSeek deploys it: q and k Hadamard-rotated and rounded through e4m3, which chooses other "
                   "positions in some rows)")->capture_default_str();
  }
  // --draft for the commands that generate.
  void add_draft(CLI::App& app) {
    app.add_option("--draft", draft,
                   "speculative decoding with the checkpoint's MTP layer: tokens drafted per step (1-4; 0 = off; "
                   "default 1 when the checkpoint has an MTP layer). Lossless: greedy output is identical and "
                   "sampled output has the same distribution");
  }
  rt::EngineOptions engine_options() const;
};

// `--config FILE --random-weights [--layers N] [--dtype bf16|fp8]`: a model of a real shape with random weights
// built in memory (bench, serve), without a download.
struct RandomModelFlags {
  std::string config, dtype = "bf16";
  bool random = false;
  int64_t layers = 0;

  void add(CLI::App& app) {
    app.add_option("--config", config, "config.json of the shape to build (with --random-weights)");
    app.add_flag("--random-weights", random, "random weights of the config's shapes, built in memory");
    app.add_option("--dtype", dtype, "random weights' dtype for linear layers: bf16 | fp8")->capture_default_str();
    app.add_option("--layers", layers, "keep only the first N decoder layers (with --config), to fit in memory");
  }
  // The engine; `keep_mtp` false drops the MTP layer (decode benchmarks do not run it); `need_mtp` adds one MTP
  // layer of the main layers' shape where the config has none (V2 shapes; speculation benchmarks).
  std::unique_ptr<rt::Engine> engine(const rt::EngineOptions& eo, bool keep_mtp, bool need_mtp = false) const;
};

struct SamplingFlags {
  bool greedy = false;
  float temperature = -1, top_p = -1, min_p = 0;
  int top_k = 0;
  float repetition_penalty = 1, presence_penalty = 0, frequency_penalty = 0;
  uint64_t seed = 0;

  void add(CLI::App& app) {
    app.add_flag("--greedy", greedy, "always pick the most likely token (same as --temperature 0)");
    app.add_option("--temperature", temperature, "sampling temperature (default: generation_config.json, greedy where it says do_sample: false, else 0.6)");
    app.add_option("--top-p", top_p, "nucleus sampling mass in (0, 1] (default: generation_config.json, else 0.95)");
    app.add_option("--top-k", top_k, "keep the k most likely tokens (0 = off)");
    app.add_option("--min-p", min_p, "drop tokens below min_p x p(most likely) (0 = off)");
    app.add_option("--repetition-penalty", repetition_penalty, "CTRL-style penalty on seen tokens (1 = off)");
    app.add_option("--presence-penalty", presence_penalty, "OpenAI presence penalty in [-2, 2]");
    app.add_option("--frequency-penalty", frequency_penalty, "OpenAI frequency penalty in [-2, 2]");
    app.add_option("--seed", seed, "random seed")->capture_default_str();
  }
  // Model defaults come from generation_config.json (temperature, top_p) in `model_dir` when present.
  rt::SamplingParams params(const std::string& model_dir) const;
};

// `-v` summary of speculative decoding (nothing when no step drafted).
void print_spec_stats(const rt::SpecStats& st);

}  // namespace ds::app
