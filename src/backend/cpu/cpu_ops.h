// SPDX-License-Identifier: MIT
// The CPU backend's op drivers (OpenMP over n_threads; results never depend on the thread count).
#pragma once
#include "ops/params.h"

namespace ds::cpu {

void rms_norm(const ops::RmsNormParams& p, int n_threads);
void layer_norm(const ops::LayerNormParams& p, int n_threads);
void rope(const ops::RopeParams& p, int n_threads);
void silu_mul(const ops::SiluMulParams& p, int n_threads);
void embed(const ops::EmbedParams& p, int n_threads);
void add(const ops::AddParams& p, int n_threads);
void copy(const ops::CopyParams& p, int n_threads);
void kv_write(const ops::KvWriteParams& p, int n_threads);
void kv_read(const ops::KvReadParams& p, int n_threads);
void mla_prefill(const ops::MlaPrefillParams& p, int n_threads);
void mla_decode(const ops::MlaDecodeParams& p, int n_threads);
void gqa_attention(const ops::GqaAttentionParams& p, int n_threads);
void indexer(const ops::IndexerParams& p, int n_threads);
void moe(const ops::MoeParams& p, int n_threads);

}  // namespace ds::cpu
