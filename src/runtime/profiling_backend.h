// SPDX-License-Identifier: MIT
// A Backend decorator that times every op (after a sync) and accumulates wall time per op kind, so a benchmark
// can say where a forward pass spends its time. Adds a sync per op: for diagnosis, not for production runs.
#pragma once
#include <functional>
#include <map>
#include <memory>
#include <string>

#include "ops/backend.h"

namespace ds::rt {

struct OpStats {
  double seconds = 0;
  int64_t calls = 0;
  double bytes = 0;  // weight bytes read (matmul, moe excluded: experts vary)
};

class ProfilingBackend final : public ops::Backend {
 public:
  explicit ProfilingBackend(std::unique_ptr<ops::Backend> inner) : in_(std::move(inner)) {}
  std::string name() const override { return in_->name() + "+profile"; }
  std::unique_ptr<ops::Buffer> alloc(size_t b) override { return in_->alloc(b); }
  void upload(void* d, const void* s, size_t n) override { in_->upload(d, s, n); }
  void download(void* d, const void* s, size_t n) override { in_->download(d, s, n); }
  WeightView prepare_weight(const WeightView& w, ops::WeightUse use) override { return in_->prepare_weight(w, use); }
  std::string weights_placement() const override { return in_->weights_placement(); }
  void sync() override { in_->sync(); }

  void matmul(const ops::MatmulParams& p) override;
  void matmul_batch(const ops::MatmulParams* ps, size_t n) override;
  void rms_norm(const ops::RmsNormParams& p) override { timed("rms_norm", [&] { in_->rms_norm(p); }); }
  void layer_norm(const ops::LayerNormParams& p) override { timed("layer_norm", [&] { in_->layer_norm(p); }); }
  void rope(const ops::RopeParams& p) override { timed("rope", [&] { in_->rope(p); }); }
  void silu_mul(const ops::SiluMulParams& p) override { timed("silu_mul", [&] { in_->silu_mul(p); }); }
  void embed(const ops::EmbedParams& p) override { timed("embed", [&] { in_->embed(p); }); }
  void add(const ops::AddParams& p) override { timed("add", [&] { in_->add(p); }); }
  void copy(const ops::CopyParams& p) override { timed("copy", [&] { in_->copy(p); }); }
  void kv_write(const ops::KvWriteParams& p) override { timed("kv_write", [&] { in_->kv_write(p); }); }
  void kv_read(const ops::KvReadParams& p) override { timed("kv_read", [&] { in_->kv_read(p); }); }
  void mla_prefill(const ops::MlaPrefillParams& p) override { timed("mla_prefill", [&] { in_->mla_prefill(p); }); }
  void mla_decode(const ops::MlaDecodeParams& p) override { timed("mla_decode", [&] { in_->mla_decode(p); }); }
  void gqa_attention(const ops::GqaAttentionParams& p) override {
    timed("gqa_attention", [&] { in_->gqa_attention(p); });
  }
  void indexer(const ops::IndexerParams& p) override { timed("indexer", [&] { in_->indexer(p); }); }
  void fp8_round(const ops::Fp8RoundParams& p) override { timed("fp8_round", [&] { in_->fp8_round(p); }); }
  void route(const ops::RouteParams& p) override { timed("route", [&] { in_->route(p); }); }
  void moe(const ops::MoeParams& p) override { timed("moe", [&] { in_->moe(p); }); }

  const std::map<std::string, OpStats>& stats() const { return stats_; }
  void reset() { stats_.clear(); }
  // One line per op kind, slowest first: seconds, share, calls, and GB/s where weight bytes are known.
  std::string report() const;

 private:
  void timed(const std::string& key, const std::function<void()>& f, double bytes = 0);
  std::unique_ptr<ops::Backend> in_;
  std::map<std::string, OpStats> stats_;
};

}  // namespace ds::rt
