// SPDX-License-Identifier: MIT
#include "backend/cpu/cpu_backend.h"

#include <cstring>

#include "ops/ref/ref_backend.h"

namespace ds::cpu {

namespace {
class CpuBackend final : public ops::Backend {
 public:
  explicit CpuBackend(int n_threads) : n_threads_(n_threads) {}
  std::string name() const override { return "cpu"; }
  std::unique_ptr<ops::Buffer> alloc(size_t bytes) override { return ops::host_alloc(bytes); }
  void upload(void* dst, const void* src, size_t n) override { std::memcpy(dst, src, n); }
  void download(void* dst, const void* src, size_t n) override { std::memcpy(dst, src, n); }
  void matmul(const ops::MatmulParams& p) override { ref::matmul(p); }
  void rms_norm(const ops::RmsNormParams& p) override { ref::rms_norm(p); }
  void rope(const ops::RopeParams& p) override { ref::rope(p); }
  void silu_mul(const ops::SiluMulParams& p) override { ref::silu_mul(p); }
  void embed(const ops::EmbedParams& p) override { ref::embed(p); }
  void add(const ops::AddParams& p) override { ref::add(p); }
  void copy(const ops::CopyParams& p) override { ref::copy(p); }
  void mla_prefill(const ops::MlaPrefillParams& p) override { ref::mla_prefill(p); }
  void mla_decode(const ops::MlaDecodeParams& p) override { ref::mla_decode(p); }
  void route(const ops::RouteParams& p) override { ref::route(p); }
  void moe(const ops::MoeParams& p) override { ref::moe(p); }

 private:
  int n_threads_;
};
}  // namespace

std::unique_ptr<ops::Backend> make_cpu_backend(int n_threads) { return std::make_unique<CpuBackend>(n_threads); }

}  // namespace ds::cpu
