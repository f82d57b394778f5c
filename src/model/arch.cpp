// SPDX-License-Identifier: MIT
#include "model/arch.h"

namespace ds::model {

ArchDesc describe_arch(const io::ModelConfig& c, int64_t n_mtp) {
  ArchDesc a;
  a.kv_width = c.kv_row_width();
  for (int64_t l = 0; l < c.num_hidden_layers + n_mtp; ++l) {
    LayerDesc d;
    d.attention = !c.mla() ? AttentionKind::Gqa : c.indexer() ? AttentionKind::MlaSparse : AttentionKind::Mla;
    d.ffn = c.is_moe_layer(l) ? FfnKind::Moe : FfnKind::Dense;
    a.router = a.router || d.ffn == FfnKind::Moe;
    a.layers.push_back(d);
  }
  return a;
}

namespace {
const char* kind_name(AttentionKind k) {
  return k == AttentionKind::Mla ? "MLA" : k == AttentionKind::MlaSparse ? "MLA + indexer" : "GQA";
}
}  // namespace

bool ArchDesc::sparse() const {
  for (const LayerDesc& d : layers)
    if (d.attention == AttentionKind::MlaSparse) return true;
  return false;
}

std::string ArchDesc::summary() const {
  std::string r;
  for (size_t i = 0; i < layers.size();) {
    size_t j = i;
    while (j < layers.size() && layers[j].attention == layers[i].attention && layers[j].ffn == layers[i].ffn) ++j;
    r += (r.empty() ? "" : ", ") + std::to_string(j - i) + " x (" +
         kind_name(layers[i].attention) + ", " +
         (layers[i].ffn == FfnKind::Moe ? "MoE" : "dense MLP") + ")";
    i = j;
  }
  return r;
}

}  // namespace ds::model
