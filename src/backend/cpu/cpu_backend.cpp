// SPDX-License-Identifier: MIT
// The CPU backend object: host memory, and every op routed to its threaded SIMD driver (route stays the reference).
#include "backend/cpu/cpu_backend.h"

#include <thread>

#include <cstdio>
#include <cstring>

#include "backend/cpu/cpu_ops.h"
#include "backend/cpu/kernels.h"
#include "backend/cpu/weight_arena.h"
#include "ops/ref/ref_backend.h"

namespace ds::cpu {

namespace {
class CpuBackend final : public ops::Backend {
 public:
  CpuBackend(int n_threads, bool own_weights)
      : nt_(n_threads > 0 ? n_threads : int(std::max(1u, std::thread::hardware_concurrency()))) {
    if (own_weights) arena_ = std::make_unique<WeightArena>(nt_);
  }
  std::string name() const override { return "cpu"; }
  std::unique_ptr<ops::Buffer> alloc(size_t bytes) override { return ops::host_alloc(bytes); }
  void upload(void* dst, const void* src, size_t n) override { std::memcpy(dst, src, n); }
  void download(void* dst, const void* src, size_t n) override { std::memcpy(dst, src, n); }
  void matmul(const ops::MatmulParams& p) override { cpu::matmul(p, nt_); }
  void matmul_batch(const ops::MatmulParams* ps, size_t n) override { cpu::matmul_batch(ps, n, nt_); }
  void rms_norm(const ops::RmsNormParams& p) override { cpu::rms_norm(p, nt_); }
  void layer_norm(const ops::LayerNormParams& p) override { cpu::layer_norm(p, nt_); }
  void rope(const ops::RopeParams& p) override { cpu::rope(p, nt_); }
  void silu_mul(const ops::SiluMulParams& p) override { cpu::silu_mul(p, nt_); }
  void embed(const ops::EmbedParams& p) override { cpu::embed(p, nt_); }
  void add(const ops::AddParams& p) override { cpu::add(p, nt_); }
  void copy(const ops::CopyParams& p) override { cpu::copy(p, nt_); }
  void kv_write(const ops::KvWriteParams& p) override { cpu::kv_write(p, nt_); }
  void kv_read(const ops::KvReadParams& p) override { cpu::kv_read(p, nt_); }
  void mla_prefill(const ops::MlaPrefillParams& p) override { cpu::mla_prefill(p, nt_); }
  void mla_decode(const ops::MlaDecodeParams& p) override { cpu::mla_decode(p, nt_); }
  void gqa_attention(const ops::GqaAttentionParams& p) override { cpu::gqa_attention(p, nt_); }
  void indexer(const ops::IndexerParams& p) override { cpu::indexer(p, nt_); }
  void fp8_round(const ops::Fp8RoundParams& p) override { ref::fp8_round(p); }  // small: q and k of the indexer
  void route(const ops::RouteParams& p) override { ref::route(p); }
  void moe(const ops::MoeParams& p) override { cpu::moe(p, nt_); }
  WeightView prepare_weight(const WeightView& w, ops::WeightUse use) override {
    return arena_ ? arena_->place(w, use != ops::WeightUse::General) : w;
  }
  std::string weights_placement() const override {
    if (!arena_) return "used in place (host memory or the checkpoint's file mapping)";
    char buf[160];
    std::snprintf(buf, sizeof buf, "copied into backend memory: %.2f GB, %.2f GB of it on 2 MiB pages",
                  double(arena_->bytes()) / 1e9, double(arena_->huge_page_bytes()) / 1e9);
    return buf;
  }

 private:
  int nt_;
  std::unique_ptr<WeightArena> arena_;
};
}  // namespace

std::unique_ptr<ops::Backend> make_cpu_backend(int n_threads, bool own_weights) {
  return std::make_unique<CpuBackend>(n_threads, own_weights);
}

}  // namespace ds::cpu
