// SPDX-License-Identifier: MIT
// The scalar reference backend: obviously-correct loops with fp64 accumulation. The oracle for every kernel.
#pragma once
#include <memory>

#include "ops/backend.h"

namespace ds::ref {

std::unique_ptr<ops::Backend> make_ref_backend();

// Individual reference ops, callable by other backends as fallbacks and by tests.
void matmul(const ops::MatmulParams& p);
void rms_norm(const ops::RmsNormParams& p);
void layer_norm(const ops::LayerNormParams& p);
void rope(const ops::RopeParams& p);
void silu_mul(const ops::SiluMulParams& p);
void embed(const ops::EmbedParams& p);
void add(const ops::AddParams& p);
void copy(const ops::CopyParams& p);
void kv_write(const ops::KvWriteParams& p);
void kv_read(const ops::KvReadParams& p);
void mla_prefill(const ops::MlaPrefillParams& p);
void mla_decode(const ops::MlaDecodeParams& p);
void gqa_attention(const ops::GqaAttentionParams& p);
void indexer(const ops::IndexerParams& p);
void fp8_round(const ops::Fp8RoundParams& p);
void route(const ops::RouteParams& p);
void moe(const ops::MoeParams& p);

}  // namespace ds::ref
