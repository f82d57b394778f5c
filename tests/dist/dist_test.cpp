// SPDX-License-Identifier: MIT
// Tensor and expert parallelism across processes, end to end: `mpirun -np N deepseek logits|generate` on every
// fixture gives the one-process results bit for bit (logits, MTP logits, greedy continuations), ranks that open
// different models are refused at startup, and a rank killed mid-generation ends the job within seconds with a
// message naming it.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "dist/comm.h"
#include "io/config.h"
#include "io/npy.h"

namespace ds::test {
namespace {

namespace fs = std::filesystem;
const std::string kBin = std::string(DS_BINARY_DIR) + "/apps/deepseek/deepseek";
const std::string kShared = std::string(DS_SOURCE_DIR) + "/../shared/fixtures/";

TEST(Split, EvenWholeUnits) {
  for (int64_t total : {0, 1, 7, 16, 100, 2048, 129280})
    for (int parts : {1, 2, 3, 5, 8})
      for (int64_t unit : {1, 16}) {
        const auto r = dist::split_all(total, parts, unit);
        ASSERT_EQ(int(r.size()), parts);
        EXPECT_EQ(r.front().begin, 0);
        EXPECT_EQ(r.back().end, total);
        int64_t lo = total, hi = 0;
        for (int p = 0; p < parts; ++p) {
          if (p > 0) EXPECT_EQ(r[size_t(p)].begin, r[size_t(p) - 1].end);
          EXPECT_GE(r[size_t(p)].size(), 0);
          if (r[size_t(p)].end < total) EXPECT_EQ(r[size_t(p)].size() % unit, 0) << total << "/" << parts;
          lo = std::min(lo, r[size_t(p)].size());
          hi = std::max(hi, r[size_t(p)].size());
        }
        // Whole units, the first ranges one unit more; the last may also lose part of a unit.
        EXPECT_LT(hi - lo, 2 * unit) << total << " over " << parts << " in units of " << unit;
      }
}

TEST(Comm, SingleProcess) {
  auto c = dist::make_single();
  EXPECT_EQ(c->size(), 1);
  EXPECT_TRUE(c->root());
  float x[3] = {1, 2, 3}, y[3] = {};
  c->all_gather(x, y, {sizeof x});
  EXPECT_EQ(y[2], 3);
  c->all_reduce_sum(x, 3);
  EXPECT_EQ(x[1], 2);
}

struct CmdResult {
  int code = -1;
  std::string out;
};

CmdResult run(const std::string& cmd) {
  CmdResult r;
  FILE* p = popen((cmd + " 2>&1").c_str(), "r");
  if (!p) return r;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) r.out.append(buf, n);
  const int st = pclose(p);
  r.code = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  return r;
}

bool have_mpirun(std::string* why) {
#ifndef DS_HAVE_MPI
  *why = "this build has no MPI (install libopenmpi-dev: scripts/setup.sh)";
  return false;
#else
  if (run("mpirun --version").code != 0) {
    *why = "mpirun is not installed (openmpi-bin: scripts/setup.sh)";
    return false;
  }
  return true;
#endif
}

#define NEED_MPIRUN()                                       \
  do {                                                      \
    std::string why;                                        \
    if (!have_mpirun(&why)) GTEST_SKIP() << why;            \
  } while (0)

std::string mpirun(int np) {
  // Root in containers; oversubscribed on a 2-core machine.
  return "OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMP_WAIT_POLICY=passive mpirun --oversubscribe -np " +
         std::to_string(np) + " ";
}

fs::path tmp(const std::string& name) {
  return fs::temp_directory_path() / ("ds_dist_" + std::to_string(getpid()) + "_" + name);
}

std::vector<char> bytes_of(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(f), {}};
}

struct Case {
  std::string name, model, tokens;
  bool mtp = false;
  std::string precision = "f32";
};

std::vector<Case> cases() {
  std::vector<Case> c;
  for (const char* m : {"tiny-v2", "tiny-v2-lite", "tiny-v3", "tiny-v3-fp8", "tiny-qwen2", "tiny-llama", "tiny-qwen3",
                        "tiny-gguf-v2l", "tiny-gguf-qwen3", "tiny-v32", "tiny-v32-fp8"}) {
    const std::string dir = kShared + "models/" + m;
    if (!fs::exists(dir)) continue;
    c.push_back({m, dir, dir + "/tokens.npy", fs::exists(dir + "/mtp_logits.npy")});
  }
  // GGUF block formats, in the default precision.
  for (auto [file, tokens] : {std::pair{"gguf/tiny-gguf-v2l/Q4_K_M.gguf", "models/tiny-gguf-v2l/tokens.npy"},
                              std::pair{"gguf/tiny-v3/Q8_0.gguf", "models/tiny-v3/tokens.npy"}})
    if (fs::exists(kShared + file)) c.push_back({file, kShared + file, kShared + tokens, false, "fast"});
  return c;
}

// Logits (and MTP logits) of every fixture: 2 and 3 ranks write the one-process file, byte for byte.
TEST(Mpi, LogitsBitwiseAcrossRanks) {
  NEED_MPIRUN();
  const auto all = cases();
  ASSERT_GE(all.size(), 11u) << "fixtures missing under " << kShared;
  for (const Case& c : all) {
    std::string want_mtp;
    auto args = [&](const fs::path& out, const fs::path& mtp) {
      return "logits --model " + c.model + " --tokens " + c.tokens + " --precision " + c.precision + " --out " +
             out.string() + (c.mtp ? " --mtp-out " + mtp.string() : "");
    };
    const fs::path one = tmp("one.npy"), one_mtp = tmp("one_mtp.npy");
    CmdResult r = run(kBin + " " + args(one, one_mtp));
    ASSERT_EQ(r.code, 0) << c.name << ": " << r.out;
    for (int np : {2, 3}) {
      const fs::path got = tmp("np.npy"), got_mtp = tmp("np_mtp.npy");
      fs::remove(got);
      r = run(mpirun(np) + kBin + " " + args(got, got_mtp));
      ASSERT_EQ(r.code, 0) << c.name << " np=" << np << ": " << r.out;
      const io::NpyArray a = io::npy_read(one.string()), b = io::npy_read(got.string());
      ASSERT_EQ(a.shape, b.shape) << c.name;
      EXPECT_TRUE(bytes_of(one) == bytes_of(got)) << c.name << " np=" << np << ": logits differ from one process";
      if (c.mtp) EXPECT_TRUE(bytes_of(one_mtp) == bytes_of(got_mtp)) << c.name << " np=" << np << ": MTP logits";
      fs::remove(got);
      fs::remove(got_mtp);
    }
    fs::remove(one);
    fs::remove(one_mtp);
  }
}

// Greedy continuations (with MTP speculation where the fixture has the layer) equal the reference's greedy.npy.
TEST(Mpi, GreedyAcrossRanks) {
  NEED_MPIRUN();
  for (const Case& c : cases()) {
    if (c.precision != "f32" || !fs::exists(c.model + "/greedy.npy")) continue;
    const io::NpyArray want = io::npy_read(c.model + "/greedy.npy");
    for (int np : {2, 3}) {
      const fs::path ids = tmp("ids.npy");
      const CmdResult r = run(mpirun(np) + kBin + " generate --model " + c.model + " --tokens " + c.tokens +
                        " --greedy --precision f32 -n " + std::to_string(want.to_i64().size()) + " --out-ids " +
                        ids.string());
      ASSERT_EQ(r.code, 0) << c.name << " np=" << np << ": " << r.out;
      EXPECT_EQ(io::npy_read(ids.string()).to_i64(), want.to_i64()) << c.name << " np=" << np;
      fs::remove(ids);
    }
  }
}

// --tp 1 / --ep 1 (replicated heads and rows / experts) stay bitwise; --ep-combine sum re-associates the MoE sum
// (within the 1e-5 of one process); sizes other than 1 and N are refused by name.
TEST(Mpi, SplitChoices) {
  NEED_MPIRUN();
  const std::string m = kShared + "models/tiny-v3";
  const std::string args = " logits --model " + m + " --tokens " + m + "/tokens.npy --precision f32 --out ";
  const fs::path one = tmp("split_one.npy"), got = tmp("split_np.npy");
  ASSERT_EQ(run(kBin + args + one.string()).code, 0);
  for (const char* opt : {"--tp 1", "--ep 1", "--tp 1 --ep 1", "--ep-combine sum"}) {
    const CmdResult r = run(mpirun(2) + kBin + args + got.string() + " " + opt);
    ASSERT_EQ(r.code, 0) << opt << ": " << r.out;
    if (std::string(opt) != "--ep-combine sum") {
      EXPECT_TRUE(bytes_of(one) == bytes_of(got)) << opt;
      continue;
    }
    const auto a = io::npy_read(one.string()).to_f32(), b = io::npy_read(got.string()).to_f32();
    ASSERT_EQ(a.size(), b.size());
    double worst = 0;
    for (size_t i = 0; i < a.size(); ++i) worst = std::max(worst, double(std::abs(a[i] - b[i])));
    EXPECT_LE(worst, 1e-5) << opt;
  }
  const CmdResult r = run(mpirun(2) + kBin + args + got.string() + " --tp 3");
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.out.find("--tp 3 with 2 processes"), std::string::npos) << r.out;
  fs::remove(one);
  fs::remove(got);
}

// Grouped-query attention splits its kv heads over the ranks, and each rank's cache holds only its heads (rank 0's
// cache bytes per token, as `bench` prints them); with fewer kv heads than ranks it stays whole on every rank, and an
// fp8 cache whose scale tiles would straddle heads (head_dim < 128) keeps whole rows: bitwise the one-process logits.
TEST(Mpi, GqaHeadsAndCacheSplit) {
  NEED_MPIRUN();
  int checked = 0;
  for (const char* name : {"tiny-llama", "tiny-qwen2", "tiny-qwen3"}) {
    const std::string m = kShared + "models/" + name;
    if (!fs::exists(m)) continue;
    const io::ModelConfig c = io::load_config(m + "/config.json");
    ASSERT_EQ(c.kv_row_width(), 2 * c.num_key_value_heads * c.head_dim) << name;
    for (int np : {1, 2, 3}) {
      const CmdResult r = run((np > 1 ? mpirun(np) : std::string()) + kBin + " bench --model " + m +
                              " --prompt 4 --gen 2 -t 1 --kv-dtype f32");
      ASSERT_EQ(r.code, 0) << name << " np=" << np << ": " << r.out;
      const int64_t heads = c.num_key_value_heads >= np ? dist::split(c.num_key_value_heads, np, 0).size()
                                                         : c.num_key_value_heads;
      const int64_t want = 2 * heads * c.head_dim * 4 * c.num_hidden_layers;
      EXPECT_NE(r.out.find("(" + std::to_string(want) + " bytes per token)"), std::string::npos)
          << name << " np=" << np << ": rank 0's cache should hold " << heads << " kv heads\n" << r.out;
      ++checked;
    }
    for (const char* kv : {"bf16", "fp8"}) {
      const std::string args = " logits --model " + m + " --tokens " + m + "/tokens.npy --precision fast --kv-dtype " +
                               kv + " --out ";
      const fs::path one = tmp("gqa_one.npy"), got = tmp("gqa_np.npy");
      ASSERT_EQ(run(kBin + args + one.string()).code, 0) << name << " " << kv;
      const CmdResult r = run(mpirun(2) + kBin + args + got.string());
      ASSERT_EQ(r.code, 0) << name << " " << kv << ": " << r.out;
      EXPECT_TRUE(bytes_of(one) == bytes_of(got)) << name << " --kv-dtype " << kv << ": logits differ across ranks";
      fs::remove(one);
      fs::remove(got);
    }
  }
  EXPECT_GE(checked, 6) << "dense fixtures missing under " << kShared;
}

// GPUs across processes: one rank per GPU, activations over NCCL. Skips, saying why, without a CUDA build, without
// two GPUs, or without MPI (no GPU has been lent to this project yet: this case has not run).
TEST(Mpi, CudaRanksMatchOneGpu) {
  NEED_MPIRUN();
  const CmdResult gpus = run("nvidia-smi -L");
  int n = 0;
  for (size_t at = gpus.out.find("GPU "); gpus.code == 0 && at != std::string::npos; at = gpus.out.find("GPU ", at + 1))
    ++n;
  if (n < 2) GTEST_SKIP() << "needs 2 GPUs (found " << n << ")";
  const std::string m = kShared + "models/tiny-v3";
  const std::string args = " logits --backend cuda --model " + m + " --tokens " + m + "/tokens.npy --precision f32 --out ";
  const fs::path one = tmp("gpu_one.npy"), got = tmp("gpu_np.npy");
  const CmdResult r1 = run(kBin + args + one.string());
  if (r1.code != 0 && r1.out.find("no CUDA backend") != std::string::npos) GTEST_SKIP() << r1.out;
  ASSERT_EQ(r1.code, 0) << r1.out;
  const CmdResult r2 = run(mpirun(2) + kBin + args + got.string());
  ASSERT_EQ(r2.code, 0) << r2.out;
  const auto a = io::npy_read(one.string()).to_f32(), b = io::npy_read(got.string()).to_f32();
  ASSERT_EQ(a.size(), b.size());
  double worst = 0;
  for (size_t i = 0; i < a.size(); ++i) worst = std::max(worst, double(std::abs(a[i] - b[i])));
  EXPECT_LE(worst, 1e-5);
  fs::remove(one);
  fs::remove(got);
}

TEST(Mpi, DifferentModelsRefused) {
  NEED_MPIRUN();
  const std::string a = kShared + "models/tiny-v3", b = kShared + "models/tiny-v3-fp8";
  const fs::path out = tmp("refused.npy");
  const auto t0 = std::chrono::steady_clock::now();
  const CmdResult r = run(mpirun(1) + kBin + " logits --model " + a + " --tokens " + a + "/tokens.npy --out " + out.string() +
                    " : -np 1 " + kBin + " logits --model " + b + " --tokens " + a + "/tokens.npy --out " + out.string());
  EXPECT_NE(r.code, 0) << r.out;
  EXPECT_NE(r.out.find("rank 1 loaded a different model than rank 0"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("tiny-v3-fp8"), std::string::npos) << r.out;
  EXPECT_FALSE(fs::exists(out)) << "nothing is written when the ranks disagree";
  EXPECT_LT(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(), 60);
}

// A rank killed (SIGKILL) mid-generation: the job ends non-zero within 10 s, and the launcher's message names it.
TEST(Mpi, KilledRankEndsTheJob) {
  NEED_MPIRUN();
  const fs::path log = tmp("killed.log"), config = tmp("long_context.json");
  {  // tiny-R1's shape with random weights and room for a long generation
    std::ifstream in(std::string(DS_SOURCE_DIR) + "/models/tiny-r1/config.json");
    std::string text{std::istreambuf_iterator<char>(in), {}};
    const std::string key = "\"max_position_embeddings\": ";
    const size_t at = text.find(key);
    ASSERT_NE(at, std::string::npos);
    text.replace(at + key.size(), text.find_first_of(",\n}", at + key.size()) - at - key.size(), "4000000");
    std::ofstream(config) << text;
  }
  const pid_t launcher = fork();
  ASSERT_GE(launcher, 0);
  if (launcher == 0) {
    setenv("OMPI_ALLOW_RUN_AS_ROOT", "1", 1);
    setenv("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1", 1);
    setenv("OMP_WAIT_POLICY", "passive", 1);
    FILE* f = std::fopen(log.c_str(), "w");
    if (f) {
      dup2(fileno(f), 1);
      dup2(fileno(f), 2);
    }
    execlp("mpirun", "mpirun", "--oversubscribe", "-np", "2", kBin.c_str(), "bench", "--config", config.c_str(),
           "--random-weights", "--prompt", "4", "--gen", "2000000", (char*)nullptr);
    _exit(127);
  }
  // Rank 1 is the child of the launcher whose environment says so; wait until it is generating.
  pid_t victim = -1;
  for (int i = 0; i < 300 && victim < 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    const CmdResult kids = run("pgrep -P " + std::to_string(launcher));
    size_t at = 0;
    while (at < kids.out.size()) {
      const size_t nl = kids.out.find('\n', at);
      const std::string pid = kids.out.substr(at, nl - at);
      at = nl == std::string::npos ? kids.out.size() : nl + 1;
      std::ifstream env("/proc/" + pid + "/environ", std::ios::binary);
      const std::string e{std::istreambuf_iterator<char>(env), {}};
      if (e.find(std::string("OMPI_COMM_WORLD_RANK=1") + '\0') != std::string::npos) victim = std::atoi(pid.c_str());
    }
  }
  ASSERT_GT(victim, 0) << "rank 1 never started";
  std::this_thread::sleep_for(std::chrono::seconds(2));  // loaded and generating
  ASSERT_EQ(kill(victim, SIGKILL), 0);
  const auto t0 = std::chrono::steady_clock::now();
  int st = 0;
  pid_t done = 0;
  while ((done = waitpid(launcher, &st, WNOHANG)) == 0 &&
         std::chrono::steady_clock::now() - t0 < std::chrono::seconds(30))
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  if (done == 0) {
    kill(launcher, SIGKILL);
    waitpid(launcher, &st, 0);
  }
  std::ifstream f(log);
  const std::string out{std::istreambuf_iterator<char>(f), {}};
  ASSERT_EQ(done, launcher) << "the job did not end within 30 s after rank 1 was killed:\n" << out;
  EXPECT_LT(secs, 10) << out;
  EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) != 0) << "status " << st << "\n" << out;
  EXPECT_NE(out.find("rank 1"), std::string::npos) << out;
  fs::remove(log);
  fs::remove(config);
}

}  // namespace
}  // namespace ds::test
