// SPDX-License-Identifier: MIT
// Temporary: tokenize / detokenize / template until the tokenizer lands (replaced by cmd_tokenize.cpp, cmd_template.cpp).
#include <cstdio>

#include "apps/deepseek/commands.h"

namespace ds::app {
int cmd_tokenize(int, char**) { std::fprintf(stderr, "tokenize: not available in this build\n"); return 1; }
int cmd_detokenize(int, char**) { std::fprintf(stderr, "detokenize: not available in this build\n"); return 1; }
int cmd_template(int, char**) { std::fprintf(stderr, "template: not available in this build\n"); return 1; }
}  // namespace ds::app
