// SPDX-License-Identifier: MIT
// The Backend interface: the only way model/ reaches compute. Implemented by ref (scalar oracle), cpu and cuda.
// Thread-safety: a Backend is used by one thread at a time (the engine's); implementations parallelise inside ops.
#pragma once
#include <cstddef>
#include <memory>
#include <string>

#include "ops/params.h"

namespace ds::ops {

// Memory owned by a backend (host memory for ref/cpu, device memory for cuda).
class Buffer {
 public:
  virtual ~Buffer() = default;
  virtual void* data() = 0;
  virtual size_t size() const = 0;
  float* f32() { return static_cast<float*>(data()); }
};

// How the model will use a weight, so that a backend may lay it out for that use: General (rows gathered, sliced,
// read transposed), MatmulOnly (always the whole W of y = x · W^T, never sliced or read otherwise), or MatmulRows
// (only multiplied as y = x · W^T, by the whole W or by row slices that start at multiples of 16 rows).
enum class WeightUse { General, MatmulOnly, MatmulRows };

class Backend {
 public:
  virtual ~Backend() = default;
  virtual std::string name() const = 0;

  // Memory: zero-initialised buffers; copies between host and backend memory.
  virtual std::unique_ptr<Buffer> alloc(size_t bytes) = 0;
  virtual void upload(void* dst, const void* host_src, size_t bytes) = 0;
  virtual void download(void* host_dst, const void* src, size_t bytes) = 0;
  // Weights: returns a view usable by this backend's ops: `w` itself, or a view of the backend's own copy (cuda device
  // memory; the cpu backend's huge-page memory when it owns its weights). A copy no longer needs the source bytes.
  virtual WeightView prepare_weight(const WeightView& w, WeightUse use = WeightUse::General) {
    (void)use;
    return w;
  }
  // Where prepare_weight put the weights, for logs and benchmarks.
  virtual std::string weights_placement() const { return "used in place"; }
  // Blocks until queued work is done (no-op for host backends).
  virtual void sync() {}

  virtual void matmul(const MatmulParams& p) = 0;
  // Independent products (none reads another's output, outputs do not overlap), e.g. the q and kv projections of one
  // layer, or every head's absorbed projection. Each result is bitwise what matmul() gives for it alone; a backend
  // may run them as one parallel pass.
  virtual void matmul_batch(const MatmulParams* ps, size_t n) {
    for (size_t i = 0; i < n; ++i) matmul(ps[i]);
  }
  virtual void rms_norm(const RmsNormParams& p) = 0;
  virtual void layer_norm(const LayerNormParams& p) = 0;
  virtual void rope(const RopeParams& p) = 0;
  virtual void silu_mul(const SiluMulParams& p) = 0;
  virtual void embed(const EmbedParams& p) = 0;
  virtual void add(const AddParams& p) = 0;
  virtual void copy(const CopyParams& p) = 0;
  // KV cache rows: fp32 rows in, converted to the cache's format; stored rows out as their fp32 values.
  virtual void kv_write(const KvWriteParams& p) = 0;
  virtual void kv_read(const KvReadParams& p) = 0;
  virtual void mla_prefill(const MlaPrefillParams& p) = 0;
  virtual void mla_decode(const MlaDecodeParams& p) = 0;
  virtual void gqa_attention(const GqaAttentionParams& p) = 0;
  virtual void indexer(const IndexerParams& p) = 0;
  virtual void fp8_round(const Fp8RoundParams& p) = 0;
  virtual void route(const RouteParams& p) = 0;
  virtual void moe(const MoeParams& p) = 0;
};

// Host memory (64-byte aligned, zeroed) shared by the ref and cpu backends.
std::unique_ptr<Buffer> host_alloc(size_t bytes);

}  // namespace ds::ops
