// SPDX-License-Identifier: MIT
#include "runtime/engine.h"

#include "runtime/profiling_backend.h"

#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <filesystem>

#include "backend/cpu/cpu_backend.h"
#include "base/error.h"
#include "base/kv_rows.h"
#include "base/log.h"
#include "io/checkpoint.h"
#include "io/gguf.h"
#include "model/gguf_weights.h"
#include "model/random_weights.h"
#include "ops/ref/ref_backend.h"
#ifdef DS_HAVE_CUDA
#include "backend/cuda/cuda_backend.h"
#include "backend/cuda/nccl_comm.h"
#endif

namespace ds::rt {

namespace {
void progress_bar(size_t done, size_t total) {
  const int width = 40, filled = total ? int(width * done / total) : width;
  std::fprintf(stderr, "\rloading shards [%.*s%*s] %zu/%zu", filled, "########################################",
               width - filled, "", done, total);
  if (done == total) std::fprintf(stderr, "\n");
  std::fflush(stderr);
}
}  // namespace

void validate(const EngineOptions& opt) {
  DS_CHECK(is_kv_dtype(opt.kv_dtype), "--kv-dtype: ", dtype_name(opt.kv_dtype), " is not one of: f32, bf16, fp8");
  DS_CHECK(opt.kv_dtype == DType::F32 || opt.precision != ops::Precision::F32, "--kv-dtype ",
           kv_dtype_name(opt.kv_dtype), " needs --precision fast (or q8): --precision f32 keeps the KV cache in f32");
}

ops::Precision parse_precision(const std::string& s) {
  if (s == "f32") return ops::Precision::F32;
  if (s == "fast" || s == "q8") return ops::Precision::Fast;  // q8: Fast + EngineOptions::q8_everywhere
  fail("--precision '", s, "' is not one of: f32, fast, q8");
}

std::unique_ptr<ops::Backend> make_backend(const std::string& name, int threads, bool own_weights) {
  if (name == "cpu") return cpu::make_cpu_backend(threads, own_weights);
  if (name == "ref") return ref::make_ref_backend();
  if (name == "cuda") {
#ifdef DS_HAVE_CUDA
    return cuda::make_cuda_backend(0);
#else
    fail("--backend cuda: this build has no CUDA backend (configure with -DDS_CUDA=ON)");
#endif
  }
  fail("--backend '", name, "' is not one of: cpu, ref, cuda");
}

namespace {
std::unique_ptr<ops::Backend> make_cuda_device(int device) {
#ifdef DS_HAVE_CUDA
  return cuda::make_cuda_backend(device);
#else
  (void)device;
  fail("--backend cuda: this build has no CUDA backend (configure with -DDS_CUDA=ON)");
#endif
}
}  // namespace

bool cuda_usable(std::string* why) {
#ifdef DS_HAVE_CUDA
  std::string reason;
  if (cuda::device_count(&reason) > 0) return true;
  if (why) *why = "no CUDA device (" + reason + ")";
  return false;
#else
  if (why) *why = "this build has no CUDA backend (configure with -DDS_CUDA=ON)";
  return false;
#endif
}

// Binds loaded weights to the backend: the cpu backend copies them into huge-page memory when they fit (releasing the
// source pages tensor by tensor through `release`), or computes from the mapping.
void Engine::init_loaded(const io::ModelConfig& cfg, const EngineOptions& opt, model::Weights w,
                         const std::function<void(const void*, size_t)>& release, bool bar) {
  // Where the cpu backend computes from: its own huge-page copy, or the file mapping (see EngineOptions::load).
  DS_CHECK(opt.load == "auto" || opt.load == "copy" || opt.load == "mmap", "--load '", opt.load,
           "' is not one of: auto, copy, mmap");
  const uint64_t avail = available_memory();
  const bool own = opt.backend == "cpu" &&
                   (opt.load == "copy" || (opt.load == "auto" && avail > 0 && double(w.bytes) <= 0.8 * double(avail)));
  if (opt.backend == "cpu") {
    char msg[200];
    std::snprintf(msg, sizeof msg, "weights: %.2f GB %s (--load %s; %.1f GB of memory available)", double(w.bytes) / 1e9,
                  own ? "copied into huge-page memory" : "read through the file mapping", opt.load.c_str(),
                  double(avail) / 1e9);
    log_info(msg);
  }
  uint64_t copied = 0;
  const uint64_t total = w.bytes;
  auto done = [&release, &copied, total, bar](const void* p, size_t n) {
    release(p, n);  // this process no longer needs the mapped pages
    copied += n;
    if (bar) {
      const int width = 40, filled = int(width * std::min(1.0, double(copied) / double(total)));
      std::fprintf(stderr, "\rcopying weights [%.*s%*s] %.2f / %.2f GB", filled, "########################################",
                   width - filled, "", double(copied) / 1e9, double(total) / 1e9);
      std::fflush(stderr);
    }
  };
  init(cfg, opt, std::move(w), own, done);
  if (own && bar) std::fprintf(stderr, "\n");
}

std::unique_ptr<Engine> Engine::load_gguf(const std::string& path, const EngineOptions& opt) {
  std::unique_ptr<Engine> e(new Engine());
  e->dir_ = path;
  e->gguf_ = io::GgufModel::open(path);
  const io::ModelConfig cfg = io::config_from_gguf(*e->gguf_);
  e->gguf_weights_ = std::make_unique<model::GgufWeights>(*e->gguf_, cfg);
  const model::GgufWeights* gw = e->gguf_weights_.get();
  model::Weights w = model::bind_weights(cfg, gw->lookup(), gw->names(), path);
  e->init_loaded(cfg, opt, std::move(w), [gw](const void* p, size_t n) { gw->release(p, n); },
                 opt.progress && isatty(2));
  return e;
}

std::unique_ptr<Engine> Engine::load(const std::string& dir, const EngineOptions& opt) {
  namespace fs = std::filesystem;
  validate(opt);
  if (fs::is_regular_file(dir) && fs::path(dir).extension() == ".gguf") return load_gguf(dir, opt);
  DS_CHECK(fs::is_directory(dir), "model folder '", dir, "' does not exist or is not a directory");
  const std::string cfg_path = (fs::path(dir) / "config.json").string();
  DS_CHECK(fs::exists(cfg_path), "model folder '", dir, "' has no config.json");
  const io::ModelConfig cfg = io::load_config(cfg_path);
  std::unique_ptr<Engine> e(new Engine());
  e->dir_ = dir;
  const bool bar = opt.progress && isatty(2);
  e->ckpt_ = io::Checkpoint::open(dir, bar ? progress_bar : nullptr);
  const io::Checkpoint* ck = e->ckpt_.get();
  model::TensorLookup lookup = [ck](const std::string& name, model::RawTensor* out) {
    const io::TensorInfo* t = ck->find(name);
    if (!t) return false;
    *out = {t->data, t->dtype, t->shape};
    return true;
  };
  model::Weights w = model::bind_weights(cfg, lookup, ck->names(), dir);
  e->init_loaded(cfg, opt, std::move(w), [ck](const void* p, size_t n) { ck->release(p, n); }, bar);
  // generation_config.json may name further end-of-sequence ids.
  const fs::path gen = fs::path(dir) / "generation_config.json";
  if (fs::exists(gen)) {
    const io::Json j = io::read_json_file(gen.string(), 1 << 20);
    if (j.is_object() && j.contains("eos_token_id")) {
      const auto& v = j["eos_token_id"];
      auto add = [&](const io::Json& x) {
        if (x.is_number_integer() && x.get<int64_t>() >= 0 && x.get<int64_t>() < cfg.vocab_size &&
            std::find(e->eos_.begin(), e->eos_.end(), x.get<int32_t>()) == e->eos_.end())
          e->eos_.push_back(x.get<int32_t>());
      };
      if (v.is_array()) for (const auto& x : v) add(x);
      else add(v);
    }
  }
  return e;
}

std::unique_ptr<Engine> Engine::random(const io::ModelConfig& cfg, DType linear_dtype, const EngineOptions& opt) {
  validate(opt);
  std::unique_ptr<Engine> e(new Engine());
  e->random_ = std::make_unique<model::RandomWeights>(cfg, linear_dtype);
  model::Weights w = model::bind_weights(cfg, e->random_->lookup(), e->random_->names(), "random weights");
  // The cpu backend takes its own copy in its own layout, as from a checkpoint (what a benchmark must measure); each
  // random tensor is freed once copied.
  model::RandomWeights* rw = e->random_.get();
  const bool own = opt.backend == "cpu" && opt.load != "mmap";
  e->init(cfg, opt, std::move(w), own, [rw](const void* p, size_t) { rw->release(p); });
  return e;
}

namespace {
// FNV-1a, 64 bits.
void mix(uint64_t* h, const void* data, size_t n) {
  const uint8_t* p = static_cast<const uint8_t*>(data);
  for (size_t i = 0; i < n; ++i) *h = (*h ^ p[i]) * 0x100000001b3ull;
}

// Every rank of a split model must hold the same model: a checksum of the config (config.json's bytes, or the
// config read from a GGUF) and of the tensor table (every weight's format and shape, and its first and last 64
// bytes) is compared across ranks before anything is computed. Fails on every rank, naming each rank's source.
void check_same_model(const io::ModelConfig& cfg, model::Weights* w, const std::string& source, dist::Comm& comm) {
  namespace fs = std::filesystem;
  uint64_t h = 0xcbf29ce484222325ull;
  const fs::path cj = fs::path(source) / "config.json";
  if (fs::is_directory(source) && fs::exists(cj)) {
    const io::Json j = io::read_json_file(cj.string(), 64 << 20);
    const std::string text = j.dump();
    mix(&h, text.data(), text.size());
  }
  for (int64_t v : {cfg.vocab_size, cfg.hidden_size, cfg.num_hidden_layers, cfg.num_attention_heads,
                    cfg.n_routed_experts, cfg.num_experts_per_tok, cfg.kv_lora_rank, cfg.q_lora_rank})
    mix(&h, &v, sizeof v);
  model::for_each_weight(w, [&](WeightView& v, ops::WeightUse) {
    const int64_t shape[3] = {int64_t(v.dtype), v.rows, v.cols};
    mix(&h, shape, sizeof shape);
    if (!v.data) return;
    const size_t n = size_t(v.bytes()), k = std::min<size_t>(64, n);
    mix(&h, v.data, k);
    mix(&h, static_cast<const uint8_t*>(v.data) + n - k, k);
  });
  const int N = comm.size();
  std::vector<uint64_t> all(static_cast<size_t>(N));
  comm.all_gather(&h, all.data(), std::vector<size_t>(size_t(N), sizeof h));
  char name[512] = {};
  std::snprintf(name, sizeof name, "%s", fs::absolute(source).string().c_str());
  std::vector<char> names(size_t(N) * sizeof name);
  comm.all_gather(name, names.data(), std::vector<size_t>(size_t(N), sizeof name));
  for (int r = 1; r < N; ++r)
    DS_CHECK(all[size_t(r)] == all[0], "rank ", r, " loaded a different model than rank 0: '",
             std::string(&names[size_t(r) * sizeof name]), "' vs '", std::string(&names[0]),
             "' (the config or tensor table differs; every rank must open the same model)");
}
}  // namespace

void Engine::init(const io::ModelConfig& cfg, const EngineOptions& opt, model::Weights w, bool own_weights,
                  const model::WeightSourceDone& copied) {
  dist::Comm* comm = opt.comm && opt.comm->size() > 1 ? opt.comm : nullptr;
  int device = 0;
  if (comm) {
    check_same_model(cfg, &w, dir_.empty() ? "random weights" : dir_, *comm);
    if (opt.backend == "cuda") {  // one GPU per rank; activations move over NCCL, control over the MPI world
#ifdef DS_HAVE_CUDA
      device = dist::local_rank();
      nccl_ = cuda::make_nccl_comm(*comm, device);
      comm = nccl_.get();
#endif
    }
  }
  backend_ = opt.backend == "cuda" && device > 0 ? make_cuda_device(device) : make_backend(opt.backend, opt.threads, own_weights);
  if (opt.profile) {
    auto prof = std::make_unique<ProfilingBackend>(std::move(backend_));
    profiler_ = prof.get();
    backend_ = std::move(prof);
  }
  model::ModelOptions mo;
  mo.precision = opt.precision;
  mo.q8_everywhere = opt.q8_everywhere;
  mo.kv_dtype = opt.kv_dtype;
  mo.weight_copied = copied;
  mo.comm = comm;
  mo.tp = opt.tp;
  mo.ep = opt.ep;
  mo.ep_sum = opt.ep_sum;
  mo.indexer_fp8 = opt.indexer_fp8;
  model_ = std::make_unique<model::Model>(cfg, std::move(w), *backend_, mo);
  for (int64_t id : cfg.eos_token_ids) eos_.push_back(int32_t(id));
}

Engine::~Engine() = default;

uint64_t available_memory() {
  std::FILE* f = std::fopen("/proc/meminfo", "r");
  if (!f) return 0;
  char line[256];
  unsigned long long kb = 0;
  while (std::fgets(line, sizeof line, f))
    if (std::sscanf(line, "MemAvailable: %llu kB", &kb) == 1) break;
  std::fclose(f);
  return uint64_t(kb) * 1024;
}

int64_t Engine::default_ctx() const { return std::min<int64_t>(config().max_position_embeddings, 4096); }

}  // namespace ds::rt
