// SPDX-License-Identifier: MIT
// Temporary until the engine commands land.
#include <cstdio>

#include "apps/deepseek/commands.h"

namespace ds::app {
int cmd_info(int, char**) { return 1; }
int cmd_logits(int, char**) { return 1; }
int cmd_generate(int, char**) { return 1; }
int cmd_run(int, char**) { return 1; }
int cmd_bench(int, char**) { return 1; }
}  // namespace ds::app
