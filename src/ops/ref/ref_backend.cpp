// SPDX-License-Identifier: MIT
#include "ops/ref/ref_backend.h"

#include <cstring>

namespace ds::ref {

namespace {
class RefBackend final : public ops::Backend {
 public:
  std::string name() const override { return "ref"; }
  std::unique_ptr<ops::Buffer> alloc(size_t bytes) override { return ops::host_alloc(bytes); }
  void upload(void* dst, const void* src, size_t n) override { std::memcpy(dst, src, n); }
  void download(void* dst, const void* src, size_t n) override { std::memcpy(dst, src, n); }
  void matmul(const ops::MatmulParams& p) override { ref::matmul(p); }
  void rms_norm(const ops::RmsNormParams& p) override { ref::rms_norm(p); }
  void layer_norm(const ops::LayerNormParams& p) override { ref::layer_norm(p); }
  void rope(const ops::RopeParams& p) override { ref::rope(p); }
  void silu_mul(const ops::SiluMulParams& p) override { ref::silu_mul(p); }
  void embed(const ops::EmbedParams& p) override { ref::embed(p); }
  void add(const ops::AddParams& p) override { ref::add(p); }
  void copy(const ops::CopyParams& p) override { ref::copy(p); }
  void kv_write(const ops::KvWriteParams& p) override { ref::kv_write(p); }
  void kv_read(const ops::KvReadParams& p) override { ref::kv_read(p); }
  void mla_prefill(const ops::MlaPrefillParams& p) override { ref::mla_prefill(p); }
  void mla_decode(const ops::MlaDecodeParams& p) override { ref::mla_decode(p); }
  void gqa_attention(const ops::GqaAttentionParams& p) override { ref::gqa_attention(p); }
  void indexer(const ops::IndexerParams& p) override { ref::indexer(p); }
  void fp8_round(const ops::Fp8RoundParams& p) override { ref::fp8_round(p); }
  void route(const ops::RouteParams& p) override { ref::route(p); }
  void moe(const ops::MoeParams& p) override { ref::moe(p); }
};
}  // namespace

std::unique_ptr<ops::Backend> make_ref_backend() { return std::make_unique<RefBackend>(); }

}  // namespace ds::ref
