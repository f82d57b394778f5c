// SPDX-License-Identifier: MIT
// Single-thread encode throughput (MB/s) on a large mixed corpus: the fixture strings (prose, code, CJK, random
// Unicode) plus real files (C/C++ headers, licence and documentation text) read from the given folders.
// usage: tokenizer_bench TOKENIZER_DIR [MAX_MB] [FOLDER...]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "tokenizer/tokenizer.h"
#include "tokenizer/unicode.h"

namespace fs = std::filesystem;

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s TOKENIZER_DIR [MAX_MB] [FOLDER...]\n", argv[0]);
    return 2;
  }
  const size_t max_bytes = (argc > 2 ? std::stoul(argv[2]) : 32) << 20;
  std::vector<std::string> docs;
  size_t total = 0;
  {  // fixture corpus (419 strings)
    std::ifstream f(std::string(DS_SOURCE_DIR) + "/tests/fixtures/tokenizer/corpus.json");
    const auto j = nlohmann::json::parse(f);
    for (const auto& s : j) {
      docs.push_back(s.is_string() ? s.get<std::string>() : s.dump());
      total += docs.back().size();
    }
  }
  std::vector<fs::path> files;
  for (int a = 3; a < argc; ++a) {
    std::error_code ec;
    for (auto it = fs::recursive_directory_iterator(argv[a], fs::directory_options::skip_permission_denied, ec);
         it != fs::recursive_directory_iterator(); it.increment(ec)) {
      if (ec) break;
      if (it->is_regular_file(ec) && it->file_size(ec) < (4u << 20)) files.push_back(it->path());
    }
  }
  std::sort(files.begin(), files.end());  // deterministic corpus
  for (const auto& p : files) {
    if (total >= max_bytes) break;
    std::ifstream f(p, std::ios::binary);
    std::stringstream ss;
    ss << f.rdbuf();
    std::string s = ss.str();
    if (s.find('\0') != std::string::npos) continue;  // skip binaries
    if (!ds::tok::utf8_is_valid(s)) s = ds::tok::utf8_sanitize(s);
    total += s.size();
    docs.push_back(std::move(s));
  }
  const ds::tok::Tokenizer tok = ds::tok::Tokenizer::from_dir(argv[1]);
  double best = 1e30;
  size_t ntok = 0;
  for (int rep = 0; rep < 3; ++rep) {
    const auto t0 = std::chrono::steady_clock::now();
    size_t n = 0;
    for (const auto& d : docs) n += tok.encode(d, true).size();
    const double dt = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    best = std::min(best, dt);
    ntok = n;
  }
  std::printf("corpus: %zu documents, %.1f MB, %zu tokens (%.2f bytes/token)\n", docs.size(), total / 1e6, ntok,
              static_cast<double>(total) / ntok);
  std::printf("single-thread encode: %.2f MB/s, %.2f M tokens/s (best of 3, %.3f s)\n", total / 1e6 / best,
              ntok / 1e6 / best, best);
  return 0;
}
