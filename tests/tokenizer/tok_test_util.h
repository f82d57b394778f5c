// SPDX-License-Identifier: MIT
// Shared helpers for the tokenizer tests: the DeepSeek-V3 tokenizer (fetched by scripts/fetch_tokenizer.sh)
// and the fixture files under tests/fixtures/tokenizer/.
#pragma once
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "tokenizer/tokenizer.h"

namespace ds::tok::test {

inline std::string tokenizer_dir() { return std::string(DS_SOURCE_DIR) + "/.cache/tokenizer-deepseek-v3"; }
inline std::string fixture(const std::string& name) {
  return std::string(DS_SOURCE_DIR) + "/tests/fixtures/tokenizer/" + name;
}

// One shared instance per test binary (loading takes ~0.5 s).
inline const Tokenizer& v3() {
  static const Tokenizer* t = [] {
    std::ifstream probe(tokenizer_dir() + "/tokenizer.json");
    if (!probe) {
      ADD_FAILURE() << "DeepSeek-V3 tokenizer missing at " << tokenizer_dir()
                    << ": run `bash scripts/fetch_tokenizer.sh` (make test does this via scripts/setup.sh)";
      std::abort();
    }
    return new Tokenizer(Tokenizer::from_dir(tokenizer_dir()));
  }();
  return *t;
}

inline std::string read_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  EXPECT_TRUE(f.good()) << "cannot open " << path;
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

inline std::vector<nlohmann::json> read_jsonl(const std::string& path) {
  std::vector<nlohmann::json> out;
  std::istringstream in(read_file(path));
  std::string line;
  while (std::getline(in, line))
    if (!line.empty()) out.push_back(nlohmann::json::parse(line));
  return out;
}

}  // namespace ds::tok::test
