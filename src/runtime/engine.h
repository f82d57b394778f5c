// SPDX-License-Identifier: MIT
// Engine: a loaded model (checkpoint folder or random weights) bound to a compute backend. The entry point of the
// runtime API used by the CLI and the server.
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "dist/comm.h"
#include "io/config.h"
#include "model/model.h"

namespace ds::io { class Checkpoint; class GgufModel; }
namespace ds::model { class RandomWeights; class GgufWeights; }

namespace ds::rt {

struct EngineOptions {
  std::string backend = "cpu";  // cpu | ref | cuda
  int threads = 0;              // <= 0: all cores
  ops::Precision precision = ops::Precision::Fast;
  bool q8_everywhere = false;   // --precision q8: ModelOptions::q8_everywhere
  // --kv-dtype: how KV cache rows are stored (base/kv_rows.h: F32, BF16, F8_E4M3). Lower than F32 needs Fast
  // precision: F32 is the exact path, cache included.
  DType kv_dtype = DType::F32;
  bool progress = false;        // progress bar on stderr while opening shards and copying weights
  // cpu backend, checkpoints: "copy" the weights into the backend's huge-page memory at load (fastest decode; the
  // checkpoint's mapped pages are released as each tensor is copied), "mmap" compute from the file mapping (models
  // larger than RAM), "auto" copy when the weights fit in 80% of the available memory.
  std::string load = "auto";
  bool profile = false;         // time every op (ProfilingBackend); adds a sync per op
  // The processes the model is split across (dist/comm.h, docs/SCALING.md); null: one process. Every rank must load
  // the same model with the same options: load() compares a checksum of the config and tensor table across ranks.
  dist::Comm* comm = nullptr;
  int tp = 0, ep = 0;  // ModelOptions::tp / ep (--tp, --ep)
  bool ep_sum = false;  // ModelOptions::ep_sum (--ep-combine sum)
  bool indexer_fp8 = false;  // ModelOptions::indexer_fp8 (--indexer-numerics fp8)
};

// Parses "f32" / "fast" (CLI --precision); throws ds::Error naming the flag otherwise.
ops::Precision parse_precision(const std::string& s);
// Refuses option combinations (e.g. a bf16 / fp8 KV cache with --precision f32), naming the flags. Engine::load and
// Engine::random call it before loading anything.
void validate(const EngineOptions& opt);

class Engine {
 public:
  // Opens a Hugging Face checkpoint folder (config.json + safetensors shards), validating every tensor, or a GGUF
  // file (`deepseek2`; the first part of a split set; F32/F16/BF16 tensors for now).
  static std::unique_ptr<Engine> load(const std::string& model_dir, const EngineOptions& opt);
  // Random weights for `cfg` (bench): linear_dtype BF16 or F8_E4M3.
  static std::unique_ptr<Engine> random(const io::ModelConfig& cfg, DType linear_dtype, const EngineOptions& opt);
  ~Engine();

  const io::ModelConfig& config() const { return model_->config(); }
  model::Model& model() { return *model_; }
  ops::Backend& backend() { return *backend_; }
  // The op profiler when EngineOptions::profile was set, else null.
  class ProfilingBackend* profiler() { return profiler_; }
  const std::string& model_dir() const { return dir_; }
  uint64_t weight_bytes() const { return model_->weights().bytes; }
  // End-of-sequence ids: config.json eos_token_id plus generation_config.json's, deduplicated.
  const std::vector<int32_t>& eos_ids() const { return eos_; }
  // Default context size: min(max_position_embeddings, 4096).
  int64_t default_ctx() const;

 private:
  Engine() = default;
  void init(const io::ModelConfig& cfg, const EngineOptions& opt, model::Weights w, bool own_weights,
            const model::WeightSourceDone& copied);
  void init_loaded(const io::ModelConfig& cfg, const EngineOptions& opt, model::Weights w,
                   const std::function<void(const void*, size_t)>& release, bool bar);
  static std::unique_ptr<Engine> load_gguf(const std::string& path, const EngineOptions& opt);
  std::unique_ptr<io::GgufModel> gguf_;
  std::unique_ptr<model::GgufWeights> gguf_weights_;
  std::string dir_;
  std::unique_ptr<io::Checkpoint> ckpt_;
  std::unique_ptr<model::RandomWeights> random_;
  std::unique_ptr<dist::Comm> nccl_;  // GPUs across processes (EngineOptions::comm bootstraps it)
  std::unique_ptr<ops::Backend> backend_;
  class ProfilingBackend* profiler_ = nullptr;
  std::unique_ptr<model::Model> model_;
  std::vector<int32_t> eos_;
};

// own_weights (cpu only): the backend copies the weights into its own huge-page memory (EngineOptions::load).
std::unique_ptr<ops::Backend> make_backend(const std::string& name, int threads, bool own_weights = false);
// Memory the kernel says is available to new allocations (MemAvailable), in bytes; 0 when unknown.
uint64_t available_memory();
// Whether `--backend cuda` can run here: built with -DDS_CUDA=ON and a CUDA device present. `why` (may be null)
// receives what is missing. Never throws.
bool cuda_usable(std::string* why = nullptr);

}  // namespace ds::rt
