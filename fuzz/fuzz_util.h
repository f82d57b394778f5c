// SPDX-License-Identifier: MIT
// Shared by the harnesses: reading seed data once per process, and the DeepSeek-V3 tokenizer (fetched into
// .cache/ by scripts/fetch_tokenizer.sh, which `make setup` runs). DS_FUZZ_TOKENIZER overrides its folder.
#pragma once
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>

#include "tokenizer/tokenizer.h"

namespace ds::fuzz {

inline std::string read_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) {
    std::fprintf(stderr, "fuzz: cannot read %s\n", path.c_str());
    std::abort();
  }
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

// Loaded on first use and kept for the whole run (loading takes ~0.5 s; one fuzz input takes microseconds).
inline const tok::Tokenizer& v3_tokenizer() {
  static const tok::Tokenizer* t = [] {
    const char* env = std::getenv("DS_FUZZ_TOKENIZER");
    const std::string dir = env ? env : std::string(DS_SOURCE_DIR) + "/.cache/tokenizer-deepseek-v3";
    return new tok::Tokenizer(tok::Tokenizer::from_dir(dir));
  }();
  return *t;
}

}  // namespace ds::fuzz
