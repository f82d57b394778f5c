// SPDX-License-Identifier: MIT
// A Hugging Face checkpoint folder: config.json plus model.safetensors, or model.safetensors.index.json + shards.
// Index rules (reliability.md S9): weight_map file names are plain names inside the folder (no '/', '..',
// absolute paths, or symlinks resolving outside it); every listed shard exists and validates; every tensor the
// index names is in its shard; no tensor appears in two shards; a shard holding a tensor the index does not list
// is an error. Exception to the symlink rule: a Hugging Face hub cache snapshot (<repo>/snapshots/<rev>/) may link
// into <repo>/blobs/. Files in the folder that the index never names are not opened (no error).
#pragma once
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "io/json_util.h"
#include "io/safetensors.h"

namespace ds::io {

// The weight_map of a parsed model.safetensors.index.json: tensor name -> shard file name, each name checked to be
// a plain file name inside the folder (S9). Throws ds::Error naming `index_path`. (Separate from Checkpoint::open so
// the fuzzer can reach it without files.)
std::map<std::string, std::string> parse_shard_index(const Json& j, const std::string& index_path);

class Checkpoint {
 public:
  // Opens every shard of the folder `dir`. `progress`, when set, is called after each shard with (done, total).
  static std::unique_ptr<Checkpoint> open(const std::string& dir,
                                          void (*progress)(size_t done, size_t total) = nullptr);

  const std::string& dir() const { return dir_; }
  const TensorInfo* find(const std::string& name) const;  // nullptr when absent
  // Every tensor name, sorted.
  std::vector<std::string> names() const;
  uint64_t total_bytes() const;  // sum of tensor byte sizes
  size_t num_files() const { return files_.size(); }
  // Drops the mapped pages of a tensor range the caller has copied (MmapFile::release), whichever shard holds it.
  void release(const void* p, size_t n) const {
    for (const auto& f : files_) f->release(p, n);
  }

 private:
  std::string dir_;
  std::vector<std::unique_ptr<SafetensorsFile>> files_;
  std::map<std::string, const TensorInfo*> by_name_;
};

}  // namespace ds::io
