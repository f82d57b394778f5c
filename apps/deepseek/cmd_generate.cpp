// SPDX-License-Identifier: MIT
// `deepseek generate`: continue a prompt given as token ids (.npy) or text (needs the model's tokenizer:
// tokenizer.json in the folder, or a GGUF file's embedded one).
#include <cstdio>
#include <filesystem>
#include <memory>
#include <optional>

#include "apps/deepseek/cli_common.h"
#include "apps/deepseek/commands.h"
#include "apps/deepseek/text_out.h"
#include "base/error.h"
#include "base/timer.h"
#include "io/npy.h"
#include "runtime/session.h"
#include "runtime/speculative.h"
#include "runtime/world.h"
#include "tokenizer/gguf_vocab.h"
#include "tokenizer/tokenizer.h"

namespace ds::app {

int cmd_generate(int argc, char** argv) {
  CLI::App app{"Continue a prompt. Text goes to stdout as it is generated (token ids without a tokenizer).",
               "deepseek generate"};
  std::string model, tokens_path, prompt, out_ids;
  int64_t n = 128;
  bool ignore_eos = false, no_bos = false, no_special = false;
  ComputeFlags cf;
  SamplingFlags sf;
  app.add_option("-m,--model", model, "checkpoint folder, or a .gguf file (deepseek2, qwen2, llama, qwen3; F32, F16, BF16 or ggml block formats; "
                 "its embedded tokenizer unless a tokenizer.json sits beside it)")->required();
  auto* tk = app.add_option("--tokens", tokens_path, "prompt token ids, .npy int64 or int32 [T]");
  auto* pr = app.add_option("-p,--prompt", prompt, "prompt text (tokenized with the model's tokenizer)");
  tk->excludes(pr);
  app.add_option("-n,--n-predict", n, "tokens to generate")->capture_default_str();
  app.add_option("--out-ids", out_ids, "write the generated ids to this .npy (int64 [G])");
  app.add_flag("--ignore-eos", ignore_eos, "keep generating past end-of-sequence tokens");
  app.add_flag("--no-bos", no_bos, "do not prepend the BOS token to a text prompt");
  app.add_flag("--no-parse-special", no_special, "treat special-token text in the prompt as plain text");
  cf.add(app);
  cf.add_draft(app);
  sf.add(app);
  CLI11_PARSE(app, argc, argv);
  DS_CHECK(!tokens_path.empty() || !prompt.empty(), "give the prompt with --tokens FILE.npy or --prompt TEXT");
  DS_CHECK(n >= 0, "--n-predict must be >= 0");
  const rt::EngineOptions eo = cf.engine_options();  // flag errors before the tokenizer and the weights load

  std::unique_ptr<tok::Tokenizer> tokenizer;
  if (std::optional<tok::Tokenizer> found = tok::try_load_tokenizer(model))
    tokenizer = std::make_unique<tok::Tokenizer>(std::move(*found));
  std::vector<int32_t> tokens;
  if (!tokens_path.empty()) {
    const io::NpyArray arr = io::npy_read(tokens_path);
    DS_CHECK(arr.shape.size() == 1 && arr.shape[0] > 0, tokens_path, ": expected a non-empty 1-D array of token ids");
    for (int64_t t : arr.to_i64()) {
      DS_CHECK(t >= 0 && t < (int64_t(1) << 31), tokens_path, ": token id ", t, " is out of range");
      tokens.push_back(int32_t(t));
    }
  } else {
    DS_CHECK(tokenizer, "--prompt needs a tokenizer.json in ", model,
             " (or a GGUF file with tokenizer.ggml.* metadata; or pass token ids with --tokens)");
    if (!no_bos && tokenizer->add_bos() && tokenizer->bos_id() >= 0) tokens.push_back(tokenizer->bos_id());
    tokenizer->encode_append(prompt, !no_special, tokens);
  }

  const rt::SamplingParams sp = sf.params(model);
  auto e = rt::Engine::load(model, eo);
  const int64_t ctx = cf.ctx > 0 ? cf.ctx : std::max<int64_t>(e->default_ctx(), int64_t(tokens.size()) + n);
  rt::Session s(*e, ctx);
  rt::Sampler sampler(sp);
  TextOut out(tokenizer.get());

  rt::SpecStream stream(s, sampler, cf.draft);
  Timer t_pre;
  stream.prefill(tokens);
  const double pre_s = t_pre.seconds();
  std::vector<int32_t> generated, step;
  Timer t_dec;
  bool done = n == 0;
  while (!done) {
    step.clear();
    stream.next(&step, n - int64_t(generated.size()));
    for (int32_t next : step) {
      generated.push_back(next);
      const bool eos = std::find(e->eos_ids().begin(), e->eos_ids().end(), next) != e->eos_ids().end();
      if (eos && !ignore_eos) {
        done = true;
        break;
      }
      out.push(next);
      if (int64_t(generated.size()) == n) {
        done = true;
        break;
      }
    }
    done = done || stream.room() <= 0;
  }
  out.finish();
  std::fflush(stdout);
  const double dec_s = t_dec.seconds();
  if (!out_ids.empty() && rt::is_root()) {  // rank 0 alone writes (mpirun)
    std::vector<int64_t> ids(generated.begin(), generated.end());
    io::npy_write_i64(out_ids, ids.data(), {int64_t(ids.size())});
  }
  if (cf.verbose) {
    std::fprintf(stderr, "\nprompt %zu tokens: %.1f tok/s | generated %zu tokens: %.1f tok/s\n", tokens.size(),
                 double(tokens.size()) / pre_s, generated.size(), double(generated.size()) / std::max(dec_s, 1e-9));
    print_spec_stats(stream.stats());
  }
  return 0;
}

}  // namespace ds::app
