// SPDX-License-Identifier: MIT
// Checkpoint folders: single file, sharded index (reliability.md S9: path escapes, missing / duplicated / unlisted
// tensors, missing shards, malformed index), Hugging Face cache symlinks, and the fixture models.
#include "io/checkpoint.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <utility>

#include "io_test_util.h"

namespace ds::io {
namespace {

using test::st_f32_pairs;
using test::TempDir;
using test::write_file;
using test::write_text;

const char* kIndex = "model.safetensors.index.json";

// {"metadata": {...}, "weight_map": {tensor: file, ...}}
std::string index_json(const std::vector<std::pair<std::string, std::string>>& map) {
  std::string s = "{\"metadata\":{\"total_size\":0},\"weight_map\":{";
  for (size_t i = 0; i < map.size(); ++i)
    s += (i ? "," : "") + std::string("\"") + map[i].first + "\":\"" + map[i].second + "\"";
  return s + "}}";
}

// Two valid shards: a.safetensors {x, y}, b.safetensors {z}.
void two_shards(const TempDir& d) {
  write_file(d / "a.safetensors", st_f32_pairs({"x", "y"}));
  write_file(d / "b.safetensors", st_f32_pairs({"z"}));
}

std::vector<std::pair<size_t, size_t>> g_progress;
void record_progress(size_t done, size_t total) { g_progress.emplace_back(done, total); }

TEST(Checkpoint, ValidTwoShardIndex) {
  TempDir d;
  two_shards(d);
  write_text(d / kIndex, index_json({{"x", "a.safetensors"}, {"y", "a.safetensors"}, {"z", "b.safetensors"}}));
  g_progress.clear();
  auto ck = Checkpoint::open(d.path(), record_progress);
  EXPECT_EQ(ck->num_files(), 2u);
  EXPECT_EQ(ck->names(), (std::vector<std::string>{"x", "y", "z"}));
  EXPECT_EQ(ck->total_bytes(), 24u);
  EXPECT_EQ(ck->dir(), d.path());
  ASSERT_NE(ck->find("z"), nullptr);
  EXPECT_EQ(ck->find("z")->shape, (std::vector<int64_t>{2}));
  EXPECT_EQ(ck->find("w"), nullptr);
  EXPECT_EQ(g_progress, (std::vector<std::pair<size_t, size_t>>{{1, 2}, {2, 2}}));
  // A trailing slash on the folder is fine.
  EXPECT_EQ(Checkpoint::open(d.path() + "/")->num_files(), 2u);
}

TEST(Checkpoint, SingleFile) {
  TempDir d;
  write_file(d / "model.safetensors", st_f32_pairs({"b", "a"}));
  g_progress.clear();
  auto ck = Checkpoint::open(d.path(), record_progress);
  EXPECT_EQ(ck->num_files(), 1u);
  EXPECT_EQ(ck->names(), (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(ck->total_bytes(), 16u);
  EXPECT_EQ(g_progress.size(), 1u);
}

TEST(Checkpoint, MissingFolderOrFiles) {
  EXPECT_DS_ERROR(Checkpoint::open("/nonexistent/ckpt"), "/nonexistent/ckpt", "No such file");
  TempDir d;
  EXPECT_DS_ERROR(Checkpoint::open(d.path()), d.path(), "model.safetensors", "model.safetensors.index.json");
  write_text(d / "file", "x");
  EXPECT_DS_ERROR(Checkpoint::open(d / "file"), "not a directory");
}

TEST(Checkpoint, ShardNamesMustStayInFolder) {
  TempDir d;
  two_shards(d);
  std::filesystem::create_directory(d / "sub");
  write_file(d / "sub/x.safetensors", st_f32_pairs({"x", "y"}));
  const std::vector<std::pair<std::string, std::string>> bad = {{"../x.safetensors", "'..'"},
                                                                {"/abs/x.safetensors", "'/'"},
                                                                {"sub/x.safetensors", "'/'"},
                                                                {"sub\\\\x.safetensors", "'\\'"},
                                                                {"", "is empty"},
                                                                {"..", "'..'"},
                                                                {".", "is '.'"},
                                                                {"a\\u0000.safetensors", "control character"}};
  for (const auto& [name, why] : bad) {
    SCOPED_TRACE(name);
    write_text(d / kIndex, index_json({{"x", name}, {"y", "a.safetensors"}, {"z", "b.safetensors"}}));
    EXPECT_DS_ERROR(Checkpoint::open(d.path()), kIndex, "tensor 'x'", why);
  }
}

TEST(Checkpoint, SymlinkEscapingFolderRejected) {
  TempDir outside, d;
  write_file(outside / "a.safetensors", st_f32_pairs({"x", "y"}));
  write_file(d / "b.safetensors", st_f32_pairs({"z"}));
  ASSERT_EQ(::symlink((outside / "a.safetensors").c_str(), (d / "a.safetensors").c_str()), 0);
  write_text(d / kIndex, index_json({{"x", "a.safetensors"}, {"y", "a.safetensors"}, {"z", "b.safetensors"}}));
  EXPECT_DS_ERROR(Checkpoint::open(d.path()), "a.safetensors", "outside the checkpoint folder");
  // Same for a single-file checkpoint.
  TempDir s;
  ASSERT_EQ(::symlink((outside / "a.safetensors").c_str(), (s / "model.safetensors").c_str()), 0);
  EXPECT_DS_ERROR(Checkpoint::open(s.path()), "outside the checkpoint folder");
}

TEST(Checkpoint, SymlinkInsideFolderAccepted) {
  TempDir d;
  std::filesystem::create_directory(d / "store");
  write_file(d / "store/real-a", st_f32_pairs({"x", "y"}));
  write_file(d / "b.safetensors", st_f32_pairs({"z"}));
  ASSERT_EQ(::symlink("store/real-a", (d / "a.safetensors").c_str()), 0);
  write_text(d / kIndex, index_json({{"x", "a.safetensors"}, {"y", "a.safetensors"}, {"z", "b.safetensors"}}));
  EXPECT_EQ(Checkpoint::open(d.path())->num_files(), 2u);
}

TEST(Checkpoint, HuggingFaceCacheLayoutAccepted) {
  // models--org--name/snapshots/<rev>/<file> -> ../../blobs/<hash>
  TempDir root;
  const std::string repo = root / "models--org--name";
  std::filesystem::create_directories(repo + "/blobs");
  std::filesystem::create_directories(repo + "/snapshots/abc123");
  write_file(repo + "/blobs/1111", st_f32_pairs({"x", "y"}));
  write_file(repo + "/blobs/2222", st_f32_pairs({"z"}));
  write_text(repo + "/blobs/3333",
             index_json({{"x", "a.safetensors"}, {"y", "a.safetensors"}, {"z", "b.safetensors"}}));
  const std::string snap = repo + "/snapshots/abc123";
  ASSERT_EQ(::symlink("../../blobs/1111", (snap + "/a.safetensors").c_str()), 0);
  ASSERT_EQ(::symlink("../../blobs/2222", (snap + "/b.safetensors").c_str()), 0);
  ASSERT_EQ(::symlink("../../blobs/3333", (snap + "/" + kIndex).c_str()), 0);
  EXPECT_EQ(Checkpoint::open(snap)->names(), (std::vector<std::string>{"x", "y", "z"}));
  // But not elsewhere in the cache.
  write_file(root / "other", st_f32_pairs({"z"}));
  ::unlink((snap + "/b.safetensors").c_str());
  ASSERT_EQ(::symlink((root / "other").c_str(), (snap + "/b.safetensors").c_str()), 0);
  EXPECT_DS_ERROR(Checkpoint::open(snap), "outside the checkpoint folder");
}

TEST(Checkpoint, MissingShard) {
  TempDir d;
  two_shards(d);
  write_text(d / kIndex, index_json({{"x", "a.safetensors"}, {"y", "a.safetensors"}, {"z", "c.safetensors"}}));
  EXPECT_DS_ERROR(Checkpoint::open(d.path()), "c.safetensors", "missing");
}

TEST(Checkpoint, TensorMissingFromShard) {
  TempDir d;
  two_shards(d);
  write_text(
      d / kIndex,
      index_json({{"x", "a.safetensors"}, {"y", "a.safetensors"}, {"z", "b.safetensors"}, {"w", "b.safetensors"}}));
  EXPECT_DS_ERROR(Checkpoint::open(d.path()), "tensor 'w'", "b.safetensors", "missing from its shard");
}

TEST(Checkpoint, TensorInTwoShards) {
  TempDir d;
  write_file(d / "a.safetensors", st_f32_pairs({"x", "y"}));
  write_file(d / "b.safetensors", st_f32_pairs({"y", "z"}));
  for (const char* owner : {"a.safetensors", "b.safetensors"}) {
    write_text(d / kIndex, index_json({{"x", "a.safetensors"}, {"y", owner}, {"z", "b.safetensors"}}));
    EXPECT_DS_ERROR(Checkpoint::open(d.path()), "tensor 'y'", "appears in two shards", "a.safetensors",
                    "b.safetensors");
  }
}

TEST(Checkpoint, UnlistedTensorInShard) {
  TempDir d;
  two_shards(d);
  write_text(d / kIndex, index_json({{"x", "a.safetensors"}, {"z", "b.safetensors"}}));
  EXPECT_DS_ERROR(Checkpoint::open(d.path()), "a.safetensors", "tensor 'y'", "does not list");
}

TEST(Checkpoint, TensorInWrongShard) {
  TempDir d;
  two_shards(d);
  write_text(d / kIndex, index_json({{"x", "a.safetensors"}, {"y", "b.safetensors"}, {"z", "b.safetensors"}}));
  EXPECT_DS_ERROR(Checkpoint::open(d.path()), "tensor 'y'", "maps it to b.safetensors");
}

TEST(Checkpoint, InvalidShardNamesShardFile) {
  TempDir d;
  two_shards(d);
  auto img = st_f32_pairs({"z"});
  img.pop_back();
  write_file(d / "b.safetensors", img);
  write_text(d / kIndex, index_json({{"x", "a.safetensors"}, {"y", "a.safetensors"}, {"z", "b.safetensors"}}));
  EXPECT_DS_ERROR(Checkpoint::open(d.path()), d / "b.safetensors", "truncated");
}

TEST(Checkpoint, MalformedIndex) {
  TempDir d;
  two_shards(d);
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"{ not json", "invalid JSON"},
      {"[]", "must be a JSON object"},
      {"{\"metadata\":{}}", "missing 'weight_map'"},
      {"{\"weight_map\":[]}", "'weight_map' must be an object"},
      {"{\"weight_map\":{}}", "'weight_map' is empty"},
      {"{\"weight_map\":{\"x\":1}}", "must be a file name string"},
      {"{\"weight_map\":{\"x\":\"a.safetensors\",\"x\":\"b.safetensors\"}}", "duplicate JSON key 'x'"},
      {"", "invalid JSON"},
  };
  for (const auto& [text, why] : cases) {
    SCOPED_TRACE(text);
    write_text(d / kIndex, text);
    EXPECT_DS_ERROR(Checkpoint::open(d.path()), kIndex, why);
  }
}

TEST(Checkpoint, FixtureModels) {
  auto ck = Checkpoint::open(test::fixture("models/tiny-v3"));
  EXPECT_EQ(ck->num_files(), 1u);
  const auto names = ck->names();
  EXPECT_EQ(names.size(), 207u);
  EXPECT_TRUE(std::is_sorted(names.begin(), names.end()));
  EXPECT_GT(ck->total_bytes(), 4000000u);
  EXPECT_EQ(Checkpoint::open(test::fixture("models/tiny-v3-fp8"))->names().size(), 169u);
}

}  // namespace
}  // namespace ds::io
