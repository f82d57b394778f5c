// SPDX-License-Identifier: MIT
#include "apps/deepseek/cli_common.h"

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

#include "base/error.h"
#include "base/kv_rows.h"
#include "base/log.h"
#include "runtime/world.h"

namespace ds::app {

rt::EngineOptions ComputeFlags::engine_options() const {
  if (verbose) set_log_level(LogLevel::Info);
  rt::EngineOptions o;
  o.backend = backend;
  o.threads = threads > 0 || rt::world().size() == 1 ? threads : rt::default_threads_per_rank();
  o.comm = rt::model_comm();  // under mpirun: the model split across the ranks
  o.tp = tp;
  o.ep = ep;
  DS_CHECK(ep_combine == "gather" || ep_combine == "sum", "--ep-combine '", ep_combine, "' is not one of: gather, sum");
  o.ep_sum = ep_combine == "sum";
  DS_CHECK(indexer_numerics == "fp32" || indexer_numerics == "fp8", "--indexer-numerics '", indexer_numerics,
           "' is not one of: fp32, fp8");
  o.indexer_fp8 = indexer_numerics == "fp8";
  o.precision = rt::parse_precision(precision);
  o.q8_everywhere = precision == "q8";
  o.kv_dtype = parse_kv_dtype(kv_dtype);
  rt::validate(o);
  o.progress = true;
  o.load = load;
  return o;
}

std::unique_ptr<rt::Engine> RandomModelFlags::engine(const rt::EngineOptions& eo, bool keep_mtp, bool need_mtp) const {
  DS_CHECK(random, "--config needs --random-weights (the shapes only come from the config)");
  io::ModelConfig c = io::load_config(config);
  if (layers > 0) {
    DS_CHECK(layers <= c.num_hidden_layers, "--layers ", layers, " exceeds num_hidden_layers ", c.num_hidden_layers);
    c.num_hidden_layers = layers;
    c.first_k_dense_replace = std::min(c.first_k_dense_replace, layers);
  }
  if (!keep_mtp) c.num_nextn_predict_layers = 0;
  if (need_mtp && c.num_nextn_predict_layers == 0) c.num_nextn_predict_layers = 1;
  DS_CHECK(dtype == "bf16" || dtype == "fp8", "--dtype '", dtype, "' is not one of: bf16, fp8");
  std::fprintf(stderr, "building random weights...\n");
  return rt::Engine::random(c, dtype == "fp8" ? DType::F8_E4M3 : DType::BF16, eo);
}

rt::SamplingParams SamplingFlags::params(const std::string& model_dir) const {
  rt::SamplingParams p;
  float def_t = 0.6f, def_p = 0.95f;
  const auto gen = std::filesystem::path(model_dir) / "generation_config.json";
  if (!model_dir.empty() && std::filesystem::exists(gen)) {
    std::ifstream f(gen);
    const auto j = nlohmann::json::parse(f, nullptr, false);
    if (j.is_object()) {
      if (j.contains("temperature") && j["temperature"].is_number()) def_t = j["temperature"].get<float>();
      if (j.contains("top_p") && j["top_p"].is_number()) def_p = j["top_p"].get<float>();
      // Hugging Face semantics: "do_sample": false means greedy decoding whatever the temperature says.
      if (j.contains("do_sample") && j["do_sample"].is_boolean() && !j["do_sample"].get<bool>()) def_t = 0.0f;
    }
  }
  p.temperature = greedy ? 0.0f : (temperature >= 0 ? temperature : def_t);
  p.top_p = top_p > 0 ? top_p : def_p;
  p.top_k = top_k;
  p.min_p = min_p;
  p.repetition_penalty = repetition_penalty;
  p.presence_penalty = presence_penalty;
  p.frequency_penalty = frequency_penalty;
  p.seed = seed;
  rt::validate(p);
  return p;
}

void print_spec_stats(const rt::SpecStats& st) {
  if (st.steps == 0) return;
  std::fprintf(stderr, "speculative: %llu verify steps, %.2f tokens per step | drafted %llu, accepted %llu (%.1f%%)",
               (unsigned long long)st.steps, st.tokens_per_step(), (unsigned long long)st.drafted,
               (unsigned long long)st.accepted, 100.0 * st.acceptance());
  for (int k = 0; k < rt::kMaxDraft && st.drafted_at[size_t(k)]; ++k)
    std::fprintf(stderr, " | draft %d: %.1f%%", k + 1,
                 100.0 * double(st.accepted_at[size_t(k)]) / double(st.drafted_at[size_t(k)]));
  std::fprintf(stderr, "\n");
}

}  // namespace ds::app
