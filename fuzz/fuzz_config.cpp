// SPDX-License-Identifier: MIT
// Fuzzes config.json -> ModelConfig (src/io/config.cpp, reliability.md M1/M2): the strict JSON reader, then the
// field checks. An accepted config must have the invariants the model code divides and allocates by (checked
// below), and describe() and the per-layer queries must work on it.
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "base/error.h"
#include "io/config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  ds::io::ModelConfig c;
  try {
    c = ds::io::parse_config(ds::io::parse_json_text(text, "fuzz/config.json"), "fuzz/config.json");
  } catch (const ds::Error&) {
    return 0;
  }
  // What the model code relies on once a config is accepted.
  if (c.vocab_size <= 0 || c.hidden_size <= 0 || c.num_hidden_layers <= 0 || c.num_attention_heads <= 0) std::abort();
  if (c.n_routed_experts > 0 && (c.num_experts_per_tok <= 0 || c.num_experts_per_tok > c.n_routed_experts ||
                                 c.n_group <= 0 || c.n_routed_experts % c.n_group != 0))
    std::abort();
  if (!c.mla() && (c.num_key_value_heads <= 0 || c.num_attention_heads % c.num_key_value_heads != 0)) std::abort();
  (void)ds::io::describe(c);
  for (int64_t l = 0; l < c.num_layers_total() && l < 256; ++l) (void)c.is_moe_layer(l);
  (void)c.kv_row_width();
  return 0;
}
