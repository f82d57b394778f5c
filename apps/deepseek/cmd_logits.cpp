// SPDX-License-Identifier: MIT
// `deepseek logits`: one forward pass over a token file; writes the logits of every position (and, with --mtp-out,
// the MTP layer's logits: row i from the final-normed hidden state h_i and token i+1, predicting token i+2).
#include <cstdio>

#include "apps/deepseek/cli_common.h"
#include "apps/deepseek/commands.h"
#include "base/error.h"
#include "base/timer.h"
#include "io/npy.h"
#include "runtime/session.h"
#include "runtime/world.h"

namespace ds::app {

int cmd_logits(int argc, char** argv) {
  CLI::App app{"Write the logits of every position of one forward pass over a token file (.npy).", "deepseek logits"};
  std::string model, tokens_path, out_path, mtp_out;
  ComputeFlags cf;
  app.add_option("-m,--model", model, "checkpoint folder, or a .gguf file (deepseek2, qwen2, llama, qwen3: F32, F16, BF16 or ggml block formats, mixed per tensor)")->required();
  app.add_option("--tokens", tokens_path, "input token ids, .npy int64 or int32 [T]")->required();
  app.add_option("-o,--out", out_path, "output logits, .npy float32 [T, vocab]")->required();
  app.add_option("--mtp-out", mtp_out, "also write MTP logits, .npy float32 [T-1, vocab]");
  cf.add(app);
  CLI11_PARSE(app, argc, argv);
  const rt::EngineOptions eo = cf.engine_options();  // flag errors before anything is read

  const io::NpyArray arr = io::npy_read(tokens_path);
  DS_CHECK(arr.shape.size() == 1 && arr.shape[0] > 0, tokens_path, ": expected a non-empty 1-D array of token ids");
  std::vector<int32_t> tokens;
  for (int64_t t : arr.to_i64()) {
    DS_CHECK(t >= 0 && t < (int64_t(1) << 31), tokens_path, ": token id ", t, " is out of range");
    tokens.push_back(int32_t(t));
  }
  auto e = rt::Engine::load(model, eo);
  const int64_t T = int64_t(tokens.size()), V = e->config().vocab_size;
  rt::Session s(*e, cf.ctx > 0 ? cf.ctx : std::max<int64_t>(T, e->default_ctx()));
  Timer timer;
  std::vector<float> hidden;
  const auto logits = s.prefill(tokens, true, mtp_out.empty() ? nullptr : &hidden);
  if (rt::is_root()) io::npy_write_f32(out_path, logits.data(), {T, V});  // rank 0 alone writes (mpirun)
  if (!mtp_out.empty()) {
    DS_CHECK(T >= 2, "--mtp-out needs at least 2 tokens");
    std::vector<int32_t> next(tokens.begin() + 1, tokens.end());
    std::vector<float> mtp;
    e->model().forward_mtp(&s.cache(), next, hidden.data(), T - 1, &mtp);
    if (rt::is_root()) io::npy_write_f32(mtp_out, mtp.data(), {T - 1, V});
  }
  if (cf.verbose) std::fprintf(stderr, "logits: %lld tokens in %.3f s\n", (long long)T, timer.seconds());
  return 0;
}

}  // namespace ds::app
