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
  std::string model, tokens_path, out_path, mtp_out, index_out, mtp_index_out;
  ComputeFlags cf;
  app.add_option("-m,--model", model, "checkpoint folder, or a .gguf file (deepseek2, qwen2, llama, qwen3: F32, F16, BF16 or ggml block formats, mixed per tensor)")->required();
  app.add_option("--tokens", tokens_path, "input token ids, .npy int64 or int32 [T]")->required();
  app.add_option("-o,--out", out_path, "output logits, .npy float32 [T, vocab]")->required();
  app.add_option("--mtp-out", mtp_out, "also write MTP logits, .npy float32 [T-1, vocab]");
  app.add_option("--index-out", index_out,
                 "DeepSeek-V3.2: also write the positions each query attends to in every layer, .npy int64 "
                 "[layers, T, index_topk] (ascending, -1 padded)");
  app.add_option("--mtp-index-out", mtp_index_out,
                 "DeepSeek-V3.2 with --mtp-out: the MTP layer's positions, .npy int64 [T-1, index_topk]");
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
  const int64_t T = int64_t(tokens.size()), V = e->config().vocab_size, K = e->config().index_topk;
  DS_CHECK((index_out.empty() && mtp_index_out.empty()) || K > 0, model,
           ": --index-out / --mtp-index-out need a model with sparse attention (DeepSeek-V3.2's index_topk)");
  DS_CHECK(mtp_index_out.empty() || !mtp_out.empty(), "--mtp-index-out needs --mtp-out");
  std::vector<model::Model::IndexRecord> records;
  if (K > 0) e->model().record_index(&records);
  // Records of layers [l0, l1) -> [l1 - l0, rows, K] (the MTP layer: [rows, K]), each at its chunk's position.
  auto write_index = [&](const std::string& path, int64_t l0, int64_t l1, int64_t rows, bool mtp) {
    std::vector<int64_t> out(size_t((l1 - l0) * rows * K), -1);
    for (const auto& r : records)
      if (r.layer >= l0 && r.layer < l1)
        for (int64_t i = 0; i < r.rows * K; ++i)
          out[size_t(((r.layer - l0) * rows + r.pos0) * K + i)] = r.sel[size_t(i)];
    if (rt::is_root())
      io::npy_write_i64(path, out.data(), mtp ? std::vector<int64_t>{rows, K} : std::vector<int64_t>{l1 - l0, rows, K});
  };
  rt::Session s(*e, cf.ctx > 0 ? cf.ctx : std::max<int64_t>(T, e->default_ctx()));
  Timer timer;
  std::vector<float> hidden;
  const auto logits = s.prefill(tokens, true, mtp_out.empty() ? nullptr : &hidden);
  if (rt::is_root()) io::npy_write_f32(out_path, logits.data(), {T, V});  // rank 0 alone writes (mpirun)
  if (!index_out.empty()) write_index(index_out, 0, e->config().num_hidden_layers, T, false);
  records.clear();
  if (!mtp_out.empty()) {
    DS_CHECK(T >= 2, "--mtp-out needs at least 2 tokens");
    std::vector<int32_t> next(tokens.begin() + 1, tokens.end());
    std::vector<float> mtp;
    e->model().forward_mtp(&s.cache(), next, hidden.data(), T - 1, &mtp);
    if (rt::is_root()) io::npy_write_f32(mtp_out, mtp.data(), {T - 1, V});
    const int64_t L = e->config().num_hidden_layers;
    if (!mtp_index_out.empty()) write_index(mtp_index_out, L, L + 1, T - 1, true);
  }
  e->model().record_index(nullptr);
  if (cf.verbose) std::fprintf(stderr, "logits: %lld tokens in %.3f s\n", (long long)T, timer.seconds());
  return 0;
}

}  // namespace ds::app
