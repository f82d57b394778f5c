// SPDX-License-Identifier: MIT
// The `deepseek` subcommands. Each lives in its own cmd_<name>.cpp and parses its own flags (CLI11).
#pragma once

namespace ds::app {

int cmd_info(int argc, char** argv);
int cmd_logits(int argc, char** argv);
int cmd_generate(int argc, char** argv);
int cmd_run(int argc, char** argv);
int cmd_bench(int argc, char** argv);
int cmd_tokenize(int argc, char** argv);
int cmd_detokenize(int argc, char** argv);
int cmd_template(int argc, char** argv);
int cmd_serve(int argc, char** argv);
int cmd_bench_serve(int argc, char** argv);
int cmd_quantize(int argc, char** argv);

}  // namespace ds::app
