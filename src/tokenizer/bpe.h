// SPDX-License-Identifier: MIT
// Byte-level BPE model: vocab and ranked merges from tokenizer.json, applied to raw-byte pre-tokens.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include <nlohmann/json_fwd.hpp>

namespace ds::tok {

class BpeModel {
 public:
  // `model` is tokenizer.json's "model" object (type BPE, byte-level vocabulary, no dropout). With
  // "ignore_merges": true (Llama 3), a pre-token that is itself a vocabulary token is emitted as that token.
  explicit BpeModel(const nlohmann::json& model);

  // Appends the ids of one pre-token (raw bytes). O(n log n) in the piece length; frequent pieces are
  // served from a per-thread cache.
  void encode_piece(std::string_view bytes, std::vector<int32_t>& out) const;

  // Raw bytes of a vocabulary token, empty if id is not in the model vocabulary.
  std::string_view token_bytes(int32_t id) const {
    return id >= 0 && static_cast<size_t>(id) < id_bytes_.size() ? std::string_view(id_bytes_[id]) : std::string_view();
  }
  // The token text as stored in tokenizer.json (ByteLevel-mapped).
  const std::string& token_text(int32_t id) const { return id_text_.at(id); }
  bool has_id(int32_t id) const { return id >= 0 && static_cast<size_t>(id) < id_bytes_.size() && id_present_[id]; }
  size_t size() const { return id_bytes_.size(); }
  // Id of a token given its raw bytes, -1 if absent.
  int32_t find_bytes(std::string_view bytes) const;

 private:
  struct Merge {
    int32_t rank;
    int32_t id;
  };
  // Open-addressing table keyed by (left id, right id): the hot lookup of the merge loop.
  struct MergeTable {
    std::vector<uint64_t> keys;
    std::vector<Merge> vals;
    uint64_t mask = 0;
    void build(const std::vector<std::pair<uint64_t, Merge>>& items);
    const Merge* find(uint64_t key) const;
  };
  static uint64_t pair_key(int32_t a, int32_t b) {
    return (static_cast<uint64_t>(static_cast<uint32_t>(a)) << 32) | static_cast<uint32_t>(b);
  }
  void merge_word(std::string_view bytes, std::vector<int32_t>& out) const;

  std::vector<std::string> id_bytes_;
  std::vector<std::string> id_text_;
  std::vector<bool> id_present_;
  std::vector<bool> id_bytelevel_;  // the token's text is ByteLevel text (so its bytes name it uniquely)
  bool ignore_merges_ = false;
  std::unordered_map<std::string, int32_t> bytes_to_id_;
  int32_t byte_id_[256];
  MergeTable merges_;
  uint64_t instance_ = 0;  // distinguishes tokenizers in the per-thread cache
};

}  // namespace ds::tok
