// SPDX-License-Identifier: MIT
// The `deepseek` command's stable interface, end to end: `logits` (+ --mtp-out) and `generate --out-ids` on a
// fixture against the Hugging Face reference files, and clear failures (exit code 1, a message naming the problem).
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <initializer_list>
#include <cstdlib>
#include <filesystem>
#include <string>

#include "golden/fixture_util.h"

namespace ds::test {
namespace {

namespace fs = std::filesystem;

const std::string kBin = std::string(DS_BINARY_DIR) + "/apps/deepseek/deepseek";

struct CmdResult {
  int code;
  std::string out;
};

CmdResult run(const std::string& args) {
  const std::string cmd = kBin + " " + args + " 2>&1";
  FILE* p = popen(cmd.c_str(), "r");
  CmdResult r{-1, ""};
  if (!p) return r;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) r.out.append(buf, n);
  const int st = pclose(p);
  r.code = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  return r;
}

fs::path tmp(const std::string& name) { return fs::temp_directory_path() / ("ds_cli_" + std::to_string(getpid()) + name); }

TEST(Cli, LogitsAndMtpMatchReference) {
  const std::string m = fixture_dir("tiny-v3");
  const fs::path out = tmp("_logits.npy"), mtp = tmp("_mtp.npy");
  const CmdResult r = run("logits --model " + m + " --tokens " + m + "/tokens.npy --out " + out.string() + " --mtp-out " +
                    mtp.string() + " --precision f32");
  ASSERT_EQ(r.code, 0) << r.out;
  for (const auto& [got_path, want_path] : {std::pair{out, m + "/logits.npy"}, std::pair{mtp, m + "/mtp_logits.npy"}}) {
    const io::NpyArray got = io::npy_read(got_path.string()), want = io::npy_read(want_path);
    ASSERT_EQ(got.shape, want.shape);
    const auto g = got.to_f32(), w = want.to_f32();
    ASSERT_FALSE(g.empty());
    EXPECT_LE(max_abs_diff(g.data(), w.data(), g.size()), 1e-3) << want_path;
  }
  fs::remove(out);
  fs::remove(mtp);
}

TEST(Cli, GenerateGreedyMatchesReference) {
  const std::string m = fixture_dir("tiny-v2-lite");
  const fs::path ids = tmp("_ids.npy");
  const auto want = read_tokens(m + "/greedy.npy");
  const CmdResult r = run("generate --model " + m + " --tokens " + m + "/tokens.npy --greedy --precision f32 -n " +
                    std::to_string(want.size()) + " --out-ids " + ids.string());
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_EQ(read_tokens(ids.string()), want);
  fs::remove(ids);
}

// generate and run with MTP speculation (on by default for a checkpoint with an MTP layer) print what plain decoding
// prints; -v reports the drafts.
TEST(Cli, SpeculationChangesNoOutput) {
  for (const std::string fixture : {"tiny-v3", "tiny-v3-fp8"}) {
    const std::string m = fixture_dir(fixture);
    const auto want = read_tokens(m + "/greedy.npy");
    for (const char* draft : {"", "--draft 0", "--draft 4"}) {
      const fs::path ids = tmp("_spec_ids.npy");
      const CmdResult r = run("generate --model " + m + " --tokens " + m + "/tokens.npy --greedy --precision f32 -v -n " +
                              std::to_string(want.size()) + " --out-ids " + ids.string() + " " + draft);
      ASSERT_EQ(r.code, 0) << r.out;
      EXPECT_EQ(read_tokens(ids.string()), want) << fixture << " " << draft;
      EXPECT_EQ(r.out.find("speculative:") != std::string::npos, std::string(draft) != "--draft 0") << r.out;
      fs::remove(ids);
    }
  }
  const std::string r1 = std::string(DS_SOURCE_DIR) + "/models/tiny-r1";
  const std::string ask = "run --model " + r1 + " --greedy 'What is 347+589?' --draft ";
  const CmdResult plain = run(ask + "0"), spec = run(ask + "2");
  ASSERT_EQ(plain.code, 0) << plain.out;
  EXPECT_NE(plain.out.find("936"), std::string::npos) << plain.out;
  EXPECT_EQ(spec.out, plain.out);
}

// DeepSeek-V3.2: `logits --index-out / --mtp-index-out` write the positions the indexer chose, the reference's files
// value for value; generate (speculating by default) gives greedy.npy; a model without an indexer refuses the flags.
TEST(Cli, SparseAttentionSelectionsAndGreedy) {
  for (const std::string fixture : {"tiny-v32", "tiny-v32-fp8"}) {
    const std::string m = fixture_dir(fixture);
    const fs::path l = tmp("_v32_l.npy"), ml = tmp("_v32_ml.npy"), i = tmp("_v32_i.npy"), mi = tmp("_v32_mi.npy");
    const CmdResult r = run("logits --model " + m + " --tokens " + m + "/tokens.npy --precision f32 -o " + l.string() +
                            " --mtp-out " + ml.string() + " --index-out " + i.string() + " --mtp-index-out " + mi.string());
    ASSERT_EQ(r.code, 0) << r.out;
    for (auto [got, want] : {std::pair{i, "/index_sel.npy"}, std::pair{mi, "/mtp_index_sel.npy"}}) {
      const io::NpyArray a = io::npy_read(got.string()), b = io::npy_read(m + want);
      EXPECT_EQ(a.shape, b.shape) << fixture << want;
      EXPECT_EQ(a.to_i64(), b.to_i64()) << fixture << want;
    }
    const fs::path ids = tmp("_v32_ids.npy");
    const auto greedy = read_tokens(m + "/greedy.npy");
    const CmdResult g = run("generate --model " + m + " --tokens " + m + "/tokens.npy --greedy --precision f32 -n " +
                            std::to_string(greedy.size()) + " --out-ids " + ids.string());
    ASSERT_EQ(g.code, 0) << g.out;
    EXPECT_EQ(read_tokens(ids.string()), greedy) << fixture;
    for (const fs::path& f : {l, ml, i, mi, ids}) fs::remove(f);
  }
  const std::string v3 = fixture_dir("tiny-v3");
  const CmdResult r = run("logits --model " + v3 + " --tokens " + v3 + "/tokens.npy -o " + tmp("_x.npy").string() +
                          " --index-out " + tmp("_y.npy").string());
  EXPECT_EQ(r.code, 1) << r.out;
  EXPECT_NE(r.out.find("index_topk"), std::string::npos) << r.out;
}

// An error is exactly one line, "error: " and a message naming what was wrong, on exit code 1.
void expect_one_error_line(const CmdResult& r, std::initializer_list<std::string> pieces) {
  EXPECT_EQ(r.code, 1) << r.out;
  EXPECT_EQ(r.out.rfind("error: ", 0), 0u) << r.out;
  EXPECT_EQ(std::count(r.out.begin(), r.out.end(), '\n'), 1) << "not one line:\n" << r.out;
  EXPECT_EQ(r.out.back(), '\n') << r.out;
  for (const std::string& p : pieces) EXPECT_NE(r.out.find(p), std::string::npos) << "no '" << p << "' in: " << r.out;
}

// --kv-dtype: the cache format the logits command computes with (bf16 in fast precision stays close to the
// reference; the figures per fixture are in kv_dtype_test.cpp); info states the bytes per token of each format.
TEST(Cli, KvDtypeLogitsAndInfo) {
  const std::string m = fixture_dir("tiny-qwen2");
  const fs::path out = tmp("_kv_logits.npy");
  const CmdResult r = run("logits --model " + m + " --tokens " + m + "/tokens.npy --out " + out.string() +
                          " --kv-dtype bf16");
  ASSERT_EQ(r.code, 0) << r.out;
  const auto got = io::npy_read(out.string()).to_f32(), want = io::npy_read(m + "/logits.npy").to_f32();
  ASSERT_EQ(got.size(), want.size());
  const size_t V = 1000;
  for (size_t t = 0; t * V < got.size(); ++t) EXPECT_GE(cosine(got.data() + t * V, want.data() + t * V, V), 0.999);
  fs::remove(out);
  // tiny-qwen2: 3 layers of K and V rows of 2 kv heads x 16 values = 64 values (fp8: 64 codes + one scale).
  const CmdResult info = run("info --model " + m);
  ASSERT_EQ(info.code, 0) << info.out;
  EXPECT_NE(info.out.find("f32 0.75 KiB (768 B), bf16 0.38 KiB (384 B), fp8 0.20 KiB (204 B)"), std::string::npos)
      << info.out;
}

TEST(Cli, ErrorsAreOneClearLine) {
  const std::string m = fixture_dir("tiny-v3");
  expect_one_error_line(run("logits --model /nonexistent --tokens " + m + "/tokens.npy --out /tmp/x.npy"),
                        {"model folder '/nonexistent'", "does not exist"});
  expect_one_error_line(run("logits --model " + m + " --tokens " + m + "/config.json --out /tmp/x.npy"),
                        {m + "/config.json", "not a .npy file"});
  expect_one_error_line(run("logits --model " + m + " --tokens " + m + "/tokens.npy --out /tmp/x.npy --precision half"),
                        {"--precision 'half'", "f32, fast"});
  expect_one_error_line(run("generate --model " + m + " --prompt hello"), {"--prompt needs a tokenizer.json", m});
  expect_one_error_line(run("generate --model " + fixture_dir("tiny-v2") + " --tokens " + m + "/tokens.npy --draft 2"),
                        {"--draft 2", "no MTP layer"});
  expect_one_error_line(run("generate --model " + m + " --tokens " + m + "/tokens.npy --draft 5"),
                        {"--draft 5", "[0, 4]"});
  expect_one_error_line(run("logits --model " + m + " --tokens " + m + "/tokens.npy --out /tmp/x.npy --kv-dtype fp16"),
                        {"--kv-dtype 'fp16'", "f32, bf16, fp8"});
  const std::string tokens = " --tokens " + m + "/tokens.npy";
  for (const std::string& cmd : {"logits" + tokens + " --out /tmp/x.npy", "generate" + tokens, std::string("run"),
                                 std::string("bench"), std::string("serve")})
    expect_one_error_line(run(cmd + " --model " + m + " --kv-dtype bf16 --precision f32"),
                          {"--kv-dtype bf16 needs --precision fast"});
  // A usage mistake (unknown command) exits 2 with the command named and the list of commands.
  CmdResult r = run("nosuchcommand");
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.out.find("unknown command 'nosuchcommand'"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("commands:"), std::string::npos) << r.out;
  r = run("bench --help");
  EXPECT_EQ(r.code, 0);
  EXPECT_NE(r.out.find("--random-weights"), std::string::npos);
}

}  // namespace
}  // namespace ds::test
