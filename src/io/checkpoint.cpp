// SPDX-License-Identifier: MIT
// Checkpoint folder: single model.safetensors or an index + shards, with the S9 rules from checkpoint.h.
// Shards must resolve inside the folder; the one exception is the Hugging Face hub cache layout, where
// snapshots/<rev>/<file> are symlinks to ../../blobs/<hash> (targets inside <repo>/blobs are allowed).
#include "io/checkpoint.h"

#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <set>

#include "base/error.h"
#include "io/json_util.h"

namespace ds::io {

namespace {

constexpr const char* kIndexName = "model.safetensors.index.json";
constexpr const char* kSingleName = "model.safetensors";

bool exists(const std::string& p) {
  struct stat st {};
  return ::stat(p.c_str(), &st) == 0;
}

std::string real_path(const std::string& p) {
  char buf[PATH_MAX];
  if (::realpath(p.c_str(), buf) == nullptr) fail(p, ": cannot resolve path: ", std::strerror(errno));
  return buf;
}

bool inside(const std::string& path, const std::string& root) {
  return path.size() > root.size() + 1 && path.compare(0, root.size(), root) == 0 && path[root.size()] == '/';
}

std::string parent_of(const std::string& p) {
  const size_t k = p.rfind('/');
  return k == std::string::npos || k == 0 ? std::string("/") : p.substr(0, k);
}

std::string base_of(const std::string& p) {
  const size_t k = p.rfind('/');
  return k == std::string::npos ? p : p.substr(k + 1);
}

// Folders a shard may resolve into: the checkpoint folder and, for an HF cache snapshot, <repo>/blobs.
std::vector<std::string> allowed_roots(const std::string& real_dir) {
  std::vector<std::string> roots{real_dir};
  const std::string snapshots = parent_of(real_dir);
  if (base_of(snapshots) == "snapshots") {
    const std::string blobs = parent_of(snapshots) + "/blobs";
    if (exists(blobs)) roots.push_back(real_path(blobs));
  }
  return roots;
}

void check_shard_name(const std::string& index_path, const std::string& tensor, const std::string& file) {
  const auto bad = [&](const char* why) {
    fail(index_path, ": weight_map entry for tensor '", show_text(tensor), "' names shard '", show_text(file),
         "', which ", why, " (shard names must be plain file names inside the checkpoint folder)");
  };
  if (file.empty()) bad("is empty");
  if (file.find("..") != std::string::npos) bad("contains '..'");
  if (file.find('/') != std::string::npos) bad("contains '/'");
  if (file.find('\\') != std::string::npos) bad("contains '\\'");
  if (file == ".") bad("is '.'");
  for (unsigned char c : file) {
    if (c < 0x20) bad("contains a control character");
  }
}

// Resolves dir/name and checks that it stays inside the allowed roots and is a regular file.
std::string resolve_shard(const std::string& dir, const std::vector<std::string>& roots, const std::string& name) {
  const std::string p = dir + "/" + name;
  struct stat st {};
  if (::stat(p.c_str(), &st) != 0) fail(p, ": shard file is missing or unreadable: ", std::strerror(errno));
  const std::string real = real_path(p);
  const bool ok = std::any_of(roots.begin(), roots.end(), [&](const std::string& r) { return inside(real, r); });
  DS_CHECK(ok, p, ": resolves to '", real, "', outside the checkpoint folder '", roots[0], "'");
  DS_CHECK(S_ISREG(st.st_mode), p, ": not a regular file");
  return p;
}

}  // namespace

std::map<std::string, std::string> parse_shard_index(const Json& j, const std::string& index_path) {
  DS_CHECK(j.is_object(), index_path, ": must be a JSON object, found ", j.type_name());
  DS_CHECK(j.contains("weight_map"), index_path, ": missing 'weight_map'");
  const Json& wm = j["weight_map"];
  DS_CHECK(wm.is_object(), index_path, ": 'weight_map' must be an object (tensor name -> shard file), found ",
           wm.type_name());
  DS_CHECK(!wm.empty(), index_path, ": 'weight_map' is empty");
  std::map<std::string, std::string> shard_of;
  for (const auto& [tensor, file] : wm.items()) {
    DS_CHECK(file.is_string(), index_path, ": weight_map entry for tensor '", show_text(tensor),
             "' must be a file name string");
    const std::string& f = file.get_ref<const std::string&>();
    check_shard_name(index_path, tensor, f);
    shard_of.emplace(tensor, f);
  }
  return shard_of;
}

std::unique_ptr<Checkpoint> Checkpoint::open(const std::string& dir_in, void (*progress)(size_t, size_t)) {
  std::string dir = dir_in;
  while (dir.size() > 1 && dir.back() == '/') dir.pop_back();
  struct stat st {};
  if (::stat(dir.c_str(), &st) != 0) fail("checkpoint folder '", dir, "': ", std::strerror(errno));
  DS_CHECK(S_ISDIR(st.st_mode), "checkpoint folder '", dir, "' is not a directory");
  const std::vector<std::string> roots = allowed_roots(real_path(dir));

  auto ck = std::make_unique<Checkpoint>();
  ck->dir_ = dir;
  const std::string index_path = dir + "/" + kIndexName;

  if (!exists(index_path)) {
    const std::string single = dir + "/" + kSingleName;
    DS_CHECK(exists(single), "checkpoint folder '", dir, "' has neither ", kSingleName, " nor ", kIndexName);
    ck->files_.push_back(SafetensorsFile::open(resolve_shard(dir, roots, kSingleName)));
    for (const TensorInfo& t : ck->files_[0]->tensors()) ck->by_name_.emplace(t.name, &t);
    if (progress) progress(1, 1);
    return ck;
  }

  // Sharded: the index maps every tensor name to a shard file name.
  const std::map<std::string, std::string> shard_of = parse_shard_index(read_json_file(index_path), index_path);
  std::set<std::string> distinct;
  for (const auto& [tensor, file] : shard_of) distinct.insert(file);
  const std::vector<std::string> shard_names(distinct.begin(), distinct.end());  // sorted

  // Open each shard once, then check where every tensor actually lives.
  for (size_t i = 0; i < shard_names.size(); ++i) {
    ck->files_.push_back(SafetensorsFile::open(resolve_shard(dir, roots, shard_names[i])));
    if (progress) progress(i + 1, shard_names.size());
  }
  std::map<std::string, size_t> found_in;  // tensor -> index into files_
  for (size_t i = 0; i < shard_names.size(); ++i) {
    for (const TensorInfo& t : ck->files_[i]->tensors()) {
      auto [it, fresh] = found_in.emplace(t.name, i);
      DS_CHECK(fresh, dir, ": tensor '", show_text(t.name), "' appears in two shards: ", shard_names[it->second],
               " and ", shard_names[i]);
    }
  }
  for (size_t i = 0; i < shard_names.size(); ++i) {
    for (const TensorInfo& t : ck->files_[i]->tensors()) {
      auto listed = shard_of.find(t.name);
      DS_CHECK(listed != shard_of.end(), dir, "/", shard_names[i], ": contains tensor '", show_text(t.name), "' that ",
               kIndexName, " does not list");
      DS_CHECK(listed->second == shard_names[i], dir, ": tensor '", show_text(t.name), "' is in shard ", shard_names[i],
               " but ", kIndexName, " maps it to ", listed->second);
      ck->by_name_.emplace(t.name, &t);
    }
  }
  for (const auto& [tensor, file] : shard_of) {
    DS_CHECK(found_in.count(tensor) != 0, dir, "/", file, ": tensor '", show_text(tensor), "' listed in ", kIndexName,
             " is missing from its shard");
  }
  return ck;
}

const TensorInfo* Checkpoint::find(const std::string& name) const {
  auto it = by_name_.find(name);
  return it == by_name_.end() ? nullptr : it->second;
}

std::vector<std::string> Checkpoint::names() const {
  std::vector<std::string> out;
  out.reserve(by_name_.size());
  for (const auto& [name, info] : by_name_) out.push_back(name);
  return out;  // std::map iterates in sorted order
}

uint64_t Checkpoint::total_bytes() const {
  uint64_t sum = 0;
  for (const auto& [name, info] : by_name_) sum += info->nbytes();
  return sum;
}

}  // namespace ds::io
