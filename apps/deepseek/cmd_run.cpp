// SPDX-License-Identifier: MIT
// `deepseek run`: placeholder until chat templates land.
#include <cstdio>

#include "apps/deepseek/commands.h"

namespace ds::app {
int cmd_run(int, char**) {
  std::fprintf(stderr, "run: not available in this build yet\n");
  return 1;
}
}  // namespace ds::app
