// SPDX-License-Identifier: MIT
// `deepseek bench`: prefill and decode speed, stated against the hardware limits measured in the same run
// (memory bandwidth for decode, vector-unit peak for prefill).
#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <functional>

#include "apps/deepseek/cli_common.h"
#include "apps/deepseek/commands.h"
#include "base/error.h"
#include "base/kv_rows.h"
#include "base/timer.h"
#include "runtime/cost.h"
#include "runtime/hw_probe.h"
#include "runtime/profiling_backend.h"
#include "runtime/session.h"
#include "runtime/world.h"
#include "runtime/speculative.h"

namespace ds::app {

namespace {

struct BenchResult {
  double pp_tok_s = 0, pp_tflops = 0, tg_tok_s = 0, bytes_per_step = 0, tg_gbs = 0;
};

// Greedy decode of `steps` steps over `batch` sequences in one batched forward per step. With `paired` (a read set),
// every step is followed by a plain read of the same bytes, and the ratios read time / step time are collected:
// the share of the bandwidth the machine had at that moment (robust where it drifts).
double decode_batch(rt::Engine& e, std::vector<std::unique_ptr<model::KvCache>>& caches, std::vector<int32_t> last,
                    int64_t steps, const std::vector<std::pair<const void*, size_t>>* paired, int threads,
                    std::vector<double>* ratios, std::vector<double>* read_gbs) {
  const int64_t V = e.config().vocab_size;
  model::ForwardOutput out;
  double total = 0, bytes = 0;
  if (paired)
    for (const auto& r : *paired) bytes += double(r.second);
  for (int64_t s = 0; s < steps; ++s) {
    Timer t;
    model::Batch b;
    for (size_t i = 0; i < caches.size(); ++i) {
      b.tokens.push_back(last[i]);
      b.seqs.push_back({caches[i].get(), 1, false, false});
    }
    e.model().forward(b, &out);
    for (size_t i = 0; i < caches.size(); ++i) last[i] = rt::argmax(out.logits.data() + int64_t(i) * V, V);
    const double step = t.seconds();
    total += step;
    if (paired) {
      const double rd = rt::read_seconds(*paired, threads);
      ratios->push_back(rd / step);
      read_gbs->push_back(bytes / rd / 1e9);
    }
  }
  return total;
}

// A cache holding `n` rows of random values in every layer (uniform in [-1, 1), stored in the pool's format), as if n
// tokens had been prefilled: decode speed at long contexts without the prefill's cost. Attention's cost does not
// depend on the values; a sparse model's indexer still scores every row and chooses among them.
std::unique_ptr<model::KvCache> filled_cache(rt::Engine& e, int64_t n, int64_t capacity) {
  auto cache = e.model().new_cache(capacity);
  cache->prepare_write(0, n, false);
  model::KvPool& pool = cache->pool();
  const int64_t w = pool.width(), bs = pool.block_size();
  std::vector<float> x(static_cast<size_t>(w));
  std::vector<uint8_t> block(static_cast<size_t>(bs * pool.row_bytes()));
  uint64_t st = 0x9e3779b97f4a7c15ull;
  for (size_t b = 0; b * size_t(bs) < size_t(n); ++b)
    for (int64_t l = 0; l < pool.n_layers(); ++l) {
      for (int64_t i = 0; i < bs; ++i) {
        for (float& v : x) {
          st = st * 6364136223846793005ull + 1442695040888963407ull;
          v = float(int64_t(st >> 40) - (int64_t(1) << 23)) / float(1 << 23);
        }
        kv_encode_row(pool.dtype(), x.data(), w, &block[size_t(i * pool.row_bytes())]);
      }
      e.backend().upload(pool.row(cache->blocks()[b], l, 0), block.data(), block.size());
    }
  cache->length = n;
  return cache;
}

double median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

// Speculation at the cache's context (its prompt already in): the median time of a plain 1-token decode step, of a
// (1 + n)-token verify step, and of the MTP draft (a catch-up chunk of 1 + n rows, then n - 1 chained rows), each
// repeated `reps` times at the same position (the rows are rolled back after each). Then the speed-up they imply at
// an acceptance: measured by greedy speculative decoding of `gen` tokens on a checkpoint, stated (`accept` per draft
// position) on random weights, where drafts are meaningless.
void bench_speculation(rt::Engine& e, model::KvCache& cache, const std::vector<int32_t>& prompt, int n, double accept,
                       bool measure, int64_t gen, int reps) {
  model::Model& m = e.model();
  const int64_t D = e.config().hidden_size, P = cache.length;
  // The MTP layer's rows for the prompt (what prefill would have filled).
  {
    rt::Session s(e, P + gen + n + 2);
    std::vector<float> h;
    s.prefill(prompt, false, &h);
    model::Batch b;
    b.tokens.assign(prompt.begin() + 1, prompt.end());
    b.tokens.push_back(1);
    b.seqs.push_back({&cache, P, false, false});
    cache.mtp_length = 0;
    model::ForwardOutput o;
    m.forward_mtp(b, h.data(), &o);
  }
  auto timed = [&](const std::function<void()>& f) {
    std::vector<double> t;
    for (int r = 0; r < reps; ++r) {
      Timer tm;
      f();
      t.push_back(tm.seconds());
    }
    return median(t);
  };
  model::ForwardOutput out;
  auto step = [&](int64_t len) {
    model::Batch b;
    for (int64_t i = 0; i < len; ++i) b.tokens.push_back(int32_t((7 + i * 31) % e.config().vocab_size));
    b.seqs.push_back({&cache, len, len > 1, true});
    m.forward(b, &out);
    cache.length = P;
  };
  const double t1 = timed([&] { step(1); }), tv = timed([&] { step(1 + n); });
  rt::Drafter drafter(m);
  rt::DraftState st;
  rt::Sampler greedy(rt::SamplingParams{0.0f});
  std::vector<int32_t> hist(prompt);
  std::vector<float> hidden(size_t((1 + n) * D), 0.01f);
  const double td = timed([&] {
    st.clear();
    st.add_hidden(hidden.data(), 1 + n, D);
    for (int k = 0; k <= n; ++k) st.add_next(&hist[size_t(k)], 1);
    cache.mtp_length = P - 1 - n;
    std::vector<rt::DraftJob> jobs(1);
    jobs[0] = {&cache, &st, n, &greedy, &hist};
    drafter.run(jobs);
    cache.mtp_length = P;
  });
  double expected = 1;  // tokens per step: 1 + the chance that drafts 1..k all stand, summed over k
  std::string how;
  if (measure) {
    rt::Session s(e, P + gen + n + 2);
    rt::SpecStream ss(s, greedy, n);
    ss.prefill(prompt);
    std::vector<int32_t> got;
    while (int64_t(got.size()) < gen && ss.room() > 1) ss.next(&got, gen - int64_t(got.size()));
    const rt::SpecStats& sp = ss.stats();
    for (int k = 0; k < n; ++k)
      expected += sp.drafted_at[size_t(k)] ? double(sp.accepted_at[size_t(k)]) / double(sp.drafted_at[size_t(k)]) : 0;
    char buf[96];
    std::snprintf(buf, sizeof buf, "measured over %lld greedy tokens (%.1f%% of drafts accepted)", (long long)got.size(),
                  100.0 * sp.acceptance());
    how = buf;
  } else {
    double a = 1;
    for (int k = 0; k < n; ++k) expected += (a *= accept);
    char buf[96];
    std::snprintf(buf, sizeof buf, "stated: %.0f%% per draft position (random weights draft nothing real)", 100 * accept);
    how = buf;
  }
  std::printf("speculate %d draft%s at context %lld: decode step %.2f ms | verify step (1+%d tokens) %.2f ms = %.3fx "
              "| draft %.2f ms | verify + draft = %.3fx a decode step\n",
              n, n > 1 ? "s" : "", (long long)P, t1 * 1e3, n, tv * 1e3, tv / t1, td * 1e3, (tv + td) / t1);
  std::printf("          acceptance %s: %.2f tokens per step -> %.2fx decode speed\n", how.c_str(), expected,
              expected * t1 / (tv + td));
}

}  // namespace

int cmd_bench(int argc, char** argv) {
  CLI::App app{"Measure prefill and decode speed. Prints tok/s beside bytes per token, achieved GB/s and % of the "
               "memory bandwidth measured in the same run, and prefill TFLOP/s against the measured compute peak.",
               "deepseek bench"};
  std::string model;
  bool json = false, profile = false, paired = false;
  int64_t prompt = 512, gen = 64, batch = 1;
  int draft = 0;
  double accept = 0.85;
  std::vector<int64_t> contexts;
  RandomModelFlags rm;
  ComputeFlags cf;
  app.add_option("-m,--model", model, "checkpoint folder, or a .gguf file (deepseek2, qwen2, llama, qwen3: F32, F16, BF16 or ggml block formats, mixed per tensor)");
  rm.add(app);
  app.add_option("--prompt", prompt, "prefill length")->capture_default_str();
  app.add_option("--gen", gen, "decode steps")->capture_default_str();
  app.add_option("--batch", batch, "sequences decoded together")->capture_default_str();
  app.add_flag("--json", json, "also print one JSON line with every figure");
  app.add_flag("--profile", profile, "time every op and print where decode spends its time (slows the run a little)");
  app.add_flag("--paired", paired,
               "after every decode step, read the same weight bytes plainly and report the median ratio (the share of "
               "the bandwidth the machine had at that moment; robust where it drifts; doubles the decode time)");
  app.add_option("--draft", draft,
                 "also time speculation with N MTP drafts (1-4): a decode step, a (1+N)-token verify step and the "
                 "draft at the prompt's context, and the speed-up they imply (random weights without an MTP layer "
                 "get one of the main layers' shape)")->capture_default_str();
  app.add_option("--accept", accept, "with --draft on random weights: the acceptance per draft position to assume")
      ->capture_default_str();
  app.add_option("--context", contexts,
                 "instead of the prefill / decode run: decode time per token at each of these contexts (e.g. "
                 "--context 1024,4096,32768), the cache filled with random rows rather than prefilled; compare "
                 "DeepSeek-V3.2's sparse attention with dense MLA by running a V3.2 and a V3 config")
      ->delimiter(',');
  cf.add(app);
  CLI11_PARSE(app, argc, argv);
  DS_CHECK(draft >= 0 && draft <= rt::kMaxDraft, "--draft ", draft, " is out of range [0, ", rt::kMaxDraft, "]");
  DS_CHECK(accept >= 0 && accept <= 1, "--accept must be in [0, 1]");
  DS_CHECK(model.empty() != rm.config.empty(), "give either --model DIR or --config FILE --random-weights");
  DS_CHECK(prompt >= 1 && gen >= 1 && batch >= 1, "--prompt, --gen and --batch must be >= 1");
  DS_CHECK(model.empty() || rm.layers == 0, "--layers applies to --config --random-weights only");

  rt::EngineOptions eo = cf.engine_options();  // refuses bad flag combinations before anything is measured
  eo.profile = profile;
  // Hardware limits first, while the memory is not yet filled with the model.
  const int threads = cf.threads > 0 ? cf.threads : rt::hardware_threads();
  // cuda: the device's own limits; decode GB/s is then compared with a device-to-device copy (read + written).
  const bool gpu = cf.backend == "cuda";
  rt::MemBandwidth bw;
  rt::ComputePeak peak;
  std::string device = rt::cpu_name();
  if (gpu) {
    const rt::GpuLimits g = rt::measure_gpu();
    bw.read_gbs = bw.copy_gbs = g.copy_gbs;
    peak.fp32_tflops = g.fp32_tflops;
    peak.bf16_tflops = g.bf16_tflops;  // nominal dense tensor-core peak
    device = g.name;
  } else {
    bw = rt::measure_host_bandwidth(threads);
    peak = rt::measure_cpu_peak(threads);
  }

  std::unique_ptr<rt::Engine> e;
  if (!model.empty()) {
    e = rt::Engine::load(model, eo);
  } else {
    e = rm.engine(eo, /*keep_mtp=*/draft > 0, /*need_mtp=*/draft > 0);  // plain decode does not run the MTP layer
  }
  const io::ModelConfig& c = e->config();
  const bool bf16_peak = eo.precision == ops::Precision::Fast && peak.bf16_tflops > 0;
  const double peak_tflops = bf16_peak ? peak.bf16_tflops : peak.fp32_tflops;
  if (gpu)
    std::printf("device   %s | device copy %.1f GB/s (read + written) | nominal peak %.1f TFLOP/s (%s)\n",
                device.c_str(), bw.copy_gbs, peak_tflops, bf16_peak ? "bf16 tensor cores" : "fp32");
  else
    std::printf("device   %s, %d threads | memory read %.1f GB/s, copy %.1f GB/s | peak %.2f TFLOP/s (%s)\n",
                device.c_str(), threads, bw.read_gbs, bw.copy_gbs, peak_tflops, bf16_peak ? "bf16" : "fp32");
  std::printf("model    %s: %lld layers, hidden %lld, %lld experts top-%lld, weights %.2f GB (%s), precision %s, "
              "kv cache %s (%lld bytes per token)\n",
              model.empty() ? rm.config.c_str() : model.c_str(), (long long)c.num_hidden_layers, (long long)c.hidden_size,
              (long long)c.n_routed_experts, (long long)c.num_experts_per_tok, double(e->weight_bytes()) / 1e9,
              model.empty() ? rm.dtype.c_str() : "checkpoint", cf.precision.c_str(), kv_dtype_name(eo.kv_dtype),
              (long long)(kv_row_bytes(eo.kv_dtype, e->model().arch().kv_width) * e->model().n_cache_layers()));
  std::printf("weights  %s%s\n", model.empty() ? "random; " : "", e->backend().weights_placement().c_str());

  if (!contexts.empty()) {
    for (int64_t n : contexts) {
      DS_CHECK(n >= 1 && n + gen + 1 <= c.max_position_embeddings, "--context ", n, " must be in [1, ",
               c.max_position_embeddings - gen - 1, "] (max_position_embeddings - --gen - 1)");
      std::vector<std::unique_ptr<model::KvCache>> one;
      one.push_back(filled_cache(*e, n, n + gen + 2));
      decode_batch(*e, one, {1}, 1, nullptr, threads, nullptr, nullptr);  // warm-up (scratch sized for this context)
      if (e->profiler()) e->profiler()->reset();
      const double t = decode_batch(*e, one, {1}, gen, nullptr, threads, nullptr, nullptr);
      const rt::DecodeBytes db = rt::decode_bytes(c, e->model().weights(), n + gen / 2, 1, eo.kv_dtype);
      std::printf("context  %6lld: %8.2f ms per token (%.2f tok/s) | kv cache %.3f GB%s\n", (long long)n,
                  1e3 * t / double(gen), double(gen) / t, db.kv / 1e9,
                  c.indexer() ? (" | sparse attention: top " + std::to_string(c.index_topk) + " positions").c_str()
                              : " | dense attention");
      if (e->profiler()) std::printf("decode time by op at context %lld:\n%s", (long long)n, e->profiler()->report().c_str());
    }
    return 0;
  }

  const int64_t ctx = prompt + gen + 1;
  std::vector<int32_t> tokens(static_cast<size_t>(prompt));
  for (int64_t i = 0; i < prompt; ++i) tokens[i] = int32_t((i * 7919 + 13) % c.vocab_size);
  // Warm-up, as llama-bench does it (one run of the whole prompt, then a decode step): touches the weights (page
  // cache for checkpoints) and sizes and faults in the scratch buffers, so prefill is timed as a server sees it.
  {
    rt::Session w(*e, ctx);
    w.prefill(tokens);
    w.decode(1);
  }
  BenchResult r;
  if (e->profiler()) e->profiler()->reset();
  std::string prefill_profile;
  std::vector<std::unique_ptr<model::KvCache>> caches;
  std::vector<int32_t> last;
  double pp_time = 0;
  dist::Comm& world = rt::world();  // across processes: what the collectives cost (docs/SCALING.md)
  world.reset_stats();
  dist::CommStats pp_comm;
  for (int64_t b = 0; b < batch; ++b) {
    caches.push_back(e->model().new_cache(ctx));
    model::Batch pb;
    pb.tokens = tokens;
    pb.seqs.push_back({caches.back().get(), prompt, false, false});
    model::ForwardOutput out;
    Timer t;
    e->model().forward(pb, &out);
    if (b == 0) pp_time = t.seconds(), pp_comm = world.stats();
    if (b == 0 && e->profiler()) prefill_profile = e->profiler()->report();
    last.push_back(rt::argmax(out.logits.data(), c.vocab_size));
  }
  r.pp_tok_s = double(prompt) / pp_time;
  r.pp_tflops = rt::prefill_flops(c, prompt) / pp_time / 1e12;
  if (e->profiler()) e->profiler()->reset();
  const auto read_set = rt::decode_read_set(c, e->model().weights());
  std::vector<double> ratios, pair_gbs;
  const bool pair = paired && !gpu;
  world.reset_stats();
  const double tg_time = decode_batch(*e, caches, last, gen, pair ? &read_set : nullptr, threads, &ratios, &pair_gbs);
  const dist::CommStats tg_comm = world.stats();
  r.tg_tok_s = double(gen * batch) / tg_time;
  const rt::DecodeBytes db = rt::decode_bytes(c, e->model().weights(), prompt + gen / 2, batch, eo.kv_dtype);
  r.bytes_per_step = db.total();
  r.tg_gbs = r.bytes_per_step * double(gen) / tg_time / 1e9;

  // Across processes the whole model's FLOPs are shared by the ranks: compared with every rank's peak together.
  std::printf("prefill  %lld tokens: %.1f tok/s | %.3f TFLOP/s = %.1f%% of %s\n", (long long)prompt, r.pp_tok_s,
              r.pp_tflops, 100.0 * r.pp_tflops / (peak_tflops * world.size()),
              world.size() > 1 ? (std::to_string(world.size()) + " ranks' peak").c_str() : "peak");
  std::printf("decode   batch %lld, %lld steps: %.2f tok/s | %.3f GB read per step (weights %.3f + kv %.3f) | "
              "%.1f GB/s = %.1f%% of %s bandwidth\n",
              (long long)batch, (long long)gen, r.tg_tok_s, r.bytes_per_step / 1e9, (db.total() - db.kv) / 1e9,
              db.kv / 1e9, r.tg_gbs, 100.0 * r.tg_gbs / bw.read_gbs, gpu ? "device copy" : "read");
  if (world.size() > 1)
    std::printf("comm     %d ranks (this rank's weights and bytes above) | prefill: %.2f MB sent in %llu collectives, "
                "%.1f ms = %.1f%% of it | decode: %.1f KB sent per token, %.0f collectives and %.2f ms per step = "
                "%.1f%% of it\n",
                world.size(), double(pp_comm.bytes) / 1e6, (unsigned long long)pp_comm.calls, pp_comm.seconds * 1e3,
                100.0 * pp_comm.seconds / pp_time, double(tg_comm.bytes) / 1e3 / double(gen * batch),
                double(tg_comm.calls) / double(gen), tg_comm.seconds * 1e3 / double(gen),
                100.0 * tg_comm.seconds / tg_time);
  if (pair)
    std::printf("paired   a plain read of the same %.3f GB after every step: median read/step %.1f%% (read %.1f GB/s, "
                "median of %zu steps)\n",
                (db.total() - db.kv) / 1e9, 100.0 * median(ratios), median(pair_gbs), ratios.size());
  if (e->profiler()) {
    std::printf("prefill time by op (%lld tokens):\n%s", (long long)prompt, prefill_profile.c_str());
    std::printf("decode time by op (%lld steps):\n%s", (long long)gen, e->profiler()->report().c_str());
  }
  if (draft > 0) {
    DS_CHECK(e->model().has_mtp(), "--draft: ", model, " has no MTP layer to draft with");
    auto cache = e->model().new_cache(ctx + draft + 2);
    model::Batch pb;
    pb.tokens = tokens;
    pb.seqs.push_back({cache.get(), prompt, false, false});
    model::ForwardOutput out;
    e->model().forward(pb, &out);
    bench_speculation(*e, *cache, tokens, draft, accept, !model.empty(), gen, 9);
  }
  const rt::Resident rss = rt::resident_memory();
  std::printf("memory   resident %.2f GB (peak %.2f GB) for %.2f GB of weights\n", rss.now / 1e9, rss.peak / 1e9,
              double(e->weight_bytes()) / 1e9);
  if (json)
    std::printf("{\"commit\":\"%s\",\"device\":\"%s\",\"backend\":\"%s\",\"threads\":%d,\"dtype\":\"%s\","
                "\"precision\":\"%s\",\"kv_dtype\":\"%s\",\"layers\":%lld,\"batch\":%lld,\"prompt\":%lld,\"gen\":%lld,"
                "\"pp_tok_s\":%.3f,\"pp_tflops\":%.4f,\"peak_tflops\":%.4f,\"tg_tok_s\":%.3f,"
                "\"bytes_per_step\":%.0f,\"tg_gbs\":%.2f,\"read_gbs\":%.2f,\"copy_gbs\":%.2f,\"rss_peak\":%.0f}\n",
                rt::build_commit().c_str(), device.c_str(), eo.backend.c_str(), threads,
                model.empty() ? rm.dtype.c_str() : "checkpoint", cf.precision.c_str(), kv_dtype_name(eo.kv_dtype),
                (long long)c.num_hidden_layers,
                (long long)batch, (long long)prompt, (long long)gen, r.pp_tok_s, r.pp_tflops, peak_tflops, r.tg_tok_s,
                r.bytes_per_step, r.tg_gbs, bw.read_gbs, bw.copy_gbs, rss.peak);
  return 0;
}

}  // namespace ds::app
