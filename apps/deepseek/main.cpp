// SPDX-License-Identifier: MIT
// `deepseek`: dispatches to a subcommand. Errors surface as one clear line and exit code 1, never a crash.
#include <cstdio>
#include <cstring>
#include <exception>
#include <string>

#include "apps/deepseek/commands.h"
#include "base/error.h"
#include "runtime/world.h"

namespace {

struct Command {
  const char* name;
  int (*run)(int, char**);
  const char* help;
};

const Command kCommands[] = {
    {"info", ds::app::cmd_info, "print a model's configuration, tensors and sizes"},
    {"logits", ds::app::cmd_logits, "write the logits of every position of one forward pass (.npy)"},
    {"generate", ds::app::cmd_generate, "continue a prompt (token ids or text)"},
    {"run", ds::app::cmd_run, "chat with a model through its chat template"},
    {"tokenize", ds::app::cmd_tokenize, "text -> token ids"},
    {"detokenize", ds::app::cmd_detokenize, "token ids -> text"},
    {"template", ds::app::cmd_template, "render a conversation with the model's chat template"},
    {"bench", ds::app::cmd_bench, "measure prefill and decode speed against the hardware's limits"},
    {"serve", ds::app::cmd_serve, "OpenAI-compatible HTTP server with continuous batching"},
    {"bench-serve", ds::app::cmd_bench_serve, "load-test a running server: throughput, TTFT, inter-token latency"},
    {"quantize", ds::app::cmd_quantize, "write a GGUF file (F32 ... Q4_K_M) from a Hugging Face checkpoint (deepseek2, qwen2, llama, qwen3)"},
};

void usage(FILE* f) {
  std::fprintf(f,
               "deepseek — inference for the DeepSeek model family (V2, V2-Lite, V3, R1, V3.1)\n\n"
               "usage: deepseek <command> [options]   (deepseek <command> --help for its options)\n\ncommands:\n");
  for (const auto& c : kCommands) std::fprintf(f, "  %-11s %s\n", c.name, c.help);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2 || !std::strcmp(argv[1], "--help") || !std::strcmp(argv[1], "-h") || !std::strcmp(argv[1], "help")) {
    usage(argc < 2 ? stderr : stdout);
    return argc < 2 ? 2 : 0;
  }
  for (const auto& c : kCommands) {
    if (std::strcmp(argv[1], c.name) != 0) continue;
    // Under mpirun every rank runs the command (rank 0 alone prints); an error on any rank ends them all.
    auto failed = [](const char* what) -> int {
      const ds::dist::Comm& w = ds::rt::world();
      if (w.size() > 1) std::fprintf(ds::rt::error_file(), "error (rank %d of %d): %s\n", w.rank(), w.size(), what);
      else std::fprintf(stderr, "error: %s\n", what);
      ds::rt::abort_world(1);
    };
    try {
      ds::rt::join_world();
      const int rc = c.run(argc - 1, argv + 1);
      ds::rt::leave_world();
      return rc;
    } catch (const ds::Error& e) {
      return failed(e.what());
    } catch (const std::bad_alloc&) {
      return failed("out of memory");
    } catch (const std::exception& e) {
      return failed(e.what());
    }
  }
  std::fprintf(stderr, "deepseek: unknown command '%s'\n\n", argv[1]);
  usage(stderr);
  return 2;
}
