// SPDX-License-Identifier: MIT
// `deepseek info --model DIR`: configuration, weights and memory of a checkpoint.
#include <cstdio>

#include "apps/deepseek/cli_common.h"
#include "apps/deepseek/commands.h"
#include "base/kv_rows.h"
#include "runtime/cost.h"

namespace ds::app {

int cmd_info(int argc, char** argv) {
  CLI::App app{"Print a model's configuration, weights and memory needs.", "deepseek info"};
  std::string model;
  app.add_option("-m,--model", model, "Hugging Face checkpoint folder (config.json + safetensors), or a .gguf file")->required();
  CLI11_PARSE(app, argc, argv);
  rt::EngineOptions o;
  auto e = rt::Engine::load(model, o);
  const auto& c = e->config();
  std::printf("model                   %s\n", model.c_str());
  std::printf("%s", io::describe(c).c_str());
  std::printf("weight bytes            %.3f GB (%s)\n", double(e->weight_bytes()) / 1e9,
              e->model().has_mtp() ? "with MTP layer" : "no MTP layer");
  std::printf("weight formats          %s\n", model::describe_formats(e->model().weights()).c_str());
  std::printf("architecture            %s\n", e->model().arch().summary().c_str());
  const int64_t kvw = e->model().arch().kv_width, layers = e->model().n_cache_layers();
  std::printf("kv cache per token     ");  // by --kv-dtype: the row bytes of base/kv_rows.h
  for (DType t : {DType::F32, DType::BF16, DType::F8_E4M3})
    std::printf(" %s %.2f KiB (%lld B)%s", kv_dtype_name(t), double(kv_row_bytes(t, kvw) * layers) / 1024.0,
                (long long)(kv_row_bytes(t, kvw) * layers), t == DType::F8_E4M3 ? "" : ",");
  std::printf(" (--kv-dtype; %s: %lld values x %lld layers)\n", c.mla() ? "latent" : "K and V", (long long)kvw,
              (long long)layers);
  const auto b = rt::decode_bytes(c, e->model().weights(), 0, 1);
  std::printf("bytes per decode token  %.2f MB (attention %.2f, dense %.2f, shared %.2f, router %.2f, routed %.2f, "
              "lm_head %.2f; kv cache extra)\n", b.total() / 1e6, b.attention / 1e6, b.dense / 1e6, b.shared / 1e6,
              b.router / 1e6, b.routed / 1e6, b.lm_head / 1e6);
  std::printf("eos ids                ");
  for (int32_t id : e->eos_ids()) std::printf(" %d", id);
  std::printf("\n");
  return 0;
}

}  // namespace ds::app
