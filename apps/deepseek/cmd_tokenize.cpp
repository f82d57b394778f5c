// SPDX-License-Identifier: MIT
// `deepseek tokenize` (text -> ids, one JSON array per input) and `deepseek detokenize` (ids -> text).
#include <CLI/CLI.hpp>

#include <cstdio>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "apps/deepseek/commands.h"
#include "base/error.h"
#include "tokenizer/gguf_vocab.h"
#include "tokenizer/tokenizer.h"

namespace ds::app {

namespace {

std::string ids_json(const std::vector<int32_t>& ids) {
  std::string s = "[";
  for (size_t k = 0; k < ids.size(); ++k) {
    if (k) s += ',';
    s += std::to_string(ids[k]);
  }
  return s + "]";
}

std::vector<std::string> read_jsonl_strings(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  DS_CHECK(f.good(), path, ": cannot open");
  std::vector<std::string> out;
  std::string line;
  size_t n = 0;
  while (std::getline(f, line)) {
    ++n;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty()) continue;
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(line);
    } catch (const nlohmann::json::exception& e) {
      fail(path, ":", n, ": not valid JSON: ", e.what());
    }
    if (j.is_object() && j.contains("text")) j = j["text"];  // also accept encode.jsonl-style records
    DS_CHECK(j.is_string(), path, ":", n, ": expected a JSON string per line");
    out.push_back(j.get<std::string>());
  }
  return out;
}

}  // namespace

int cmd_tokenize(int argc, char** argv) {
  CLI::App app{"Text -> token ids with the model's tokenizer (tokenizer.json, or a GGUF file's). Prints one JSON array\n"
               "of ids per input. "
               "Special-token text (e.g. <｜User｜>) is encoded as plain text unless --parse-special is given\n"
               "(Hugging Face's encode() parses it). No BOS is added. Invalid UTF-8 is replaced by U+FFFD.",
               "deepseek tokenize"};
  std::string model, text, jsonl;
  bool parse_special = false;
  int threads = 1;
  app.add_option("--model", model, "model folder with tokenizer.json (and tokenizer_config.json), or a .gguf file "
                 "(its embedded tokenizer unless a tokenizer.json sits beside it)")
      ->required();
  app.add_flag("--parse-special", parse_special, "match added/special tokens in the text (Hugging Face default)");
  app.add_option("--threads", threads, "worker threads for --jsonl")->check(CLI::Range(1, 256));
  auto* t = app.add_option("--text", text, "the text to tokenize");
  auto* j = app.add_option("--jsonl", jsonl, "file with one JSON string per line; prints one id array per line");
  t->excludes(j);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  DS_CHECK(!t->empty() || !j->empty(), "tokenize: give --text STR or --jsonl FILE (see --help)");
  const tok::Tokenizer tok = tok::load_tokenizer(model);
  if (!t->empty()) {
    std::printf("%s\n", ids_json(tok.encode(text, parse_special)).c_str());
    return 0;
  }
  const std::vector<std::string> lines = read_jsonl_strings(jsonl);
  std::vector<std::string> out(lines.size());
  const size_t nt = std::min<size_t>(static_cast<size_t>(threads), std::max<size_t>(lines.size(), 1));
  std::vector<std::thread> pool;
  std::vector<std::string> errors(nt);
  for (size_t w = 0; w < nt; ++w) {
    pool.emplace_back([&, w] {
      try {
        for (size_t k = w; k < lines.size(); k += nt) out[k] = ids_json(tok.encode(lines[k], parse_special));
      } catch (const std::exception& e) {
        errors[w] = e.what();
      }
    });
  }
  for (auto& th : pool) th.join();
  for (const auto& e : errors) DS_CHECK(e.empty(), "tokenize: ", e);
  std::string buf;
  for (const auto& o : out) (buf += o) += '\n';
  std::fwrite(buf.data(), 1, buf.size(), stdout);
  return 0;
}

int cmd_detokenize(int argc, char** argv) {
  CLI::App app{"Token ids -> text with the model's tokenizer. Added tokens print as their text; bytes that do not form\n"
               "valid UTF-8 print as U+FFFD; unknown ids are skipped with a warning.",
               "deepseek detokenize"};
  std::string model, ids_arg;
  bool skip_special = false;
  app.add_option("--model", model, "model folder with tokenizer.json, or a .gguf file")->required();
  app.add_option("--ids", ids_arg, "comma-separated ids, e.g. 1,2,3 (a JSON array is accepted too)")->required();
  app.add_flag("--skip-special", skip_special, "omit special tokens (BOS/EOS, ...)");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  std::vector<int32_t> ids;
  std::string s = ids_arg;
  for (char& c : s)
    if (c == '[' || c == ']' || c == ' ' || c == '\n' || c == '\t') c = ',';
  std::stringstream ss(s);
  std::string item;
  while (std::getline(ss, item, ',')) {
    if (item.empty()) continue;
    size_t used = 0;
    long long v = 0;
    try {
      v = std::stoll(item, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    DS_CHECK(used == item.size() && v >= INT32_MIN && v <= INT32_MAX, "detokenize: '", item, "' is not a token id");
    ids.push_back(static_cast<int32_t>(v));
  }
  const tok::Tokenizer tok = tok::load_tokenizer(model);
  for (int32_t id : ids)
    if (!tok.is_valid_id(id)) std::fprintf(stderr, "warning: id %d is not in the vocabulary (skipped)\n", id);
  const std::string text = tok.decode(ids, skip_special);
  std::fwrite(text.data(), 1, text.size(), stdout);
  std::fputc('\n', stdout);
  return 0;
}

}  // namespace ds::app
