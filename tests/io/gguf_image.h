// SPDX-License-Identifier: MIT
// A small valid GGUF image built field by field (metadata, two tensors, data), for the GGUF tests and the malformed-file
// corpus (malformed_test.cpp): a test changes one field to make one defect.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace ds::io::test {

// Builds GGUF images field by field; tests change one field to make one defect.
struct Kv {
  std::string key;
  uint32_t type;
  std::vector<uint8_t> payload;  // the value's bytes after the type
};
struct Ti {
  std::string name;
  std::vector<uint64_t> ne;
  uint32_t type = 0;
  int64_t offset = -1;  // -1: the running padded offset
  uint64_t bytes = 0;   // data bytes written for it
};

template <class T>
inline void put(std::vector<uint8_t>& b, T v) {
  const auto* p = reinterpret_cast<const uint8_t*>(&v);
  b.insert(b.end(), p, p + sizeof(T));
}
inline void put_str(std::vector<uint8_t>& b, const std::string& s) {
  put<uint64_t>(b, s.size());
  b.insert(b.end(), s.begin(), s.end());
}
inline std::vector<uint8_t> str_val(const std::string& s) {
  std::vector<uint8_t> b;
  put_str(b, s);
  return b;
}
template <class T>
inline std::vector<uint8_t> val(T v) {
  std::vector<uint8_t> b;
  put<T>(b, v);
  return b;
}
inline std::vector<uint8_t> str_array(const std::vector<std::string>& v) {
  std::vector<uint8_t> b;
  put<uint32_t>(b, 8);
  put<uint64_t>(b, v.size());
  for (const auto& s : v) put_str(b, s);
  return b;
}
inline std::vector<uint8_t> f32_array(const std::vector<float>& v) {
  std::vector<uint8_t> b;
  put<uint32_t>(b, 6);
  put<uint64_t>(b, v.size());
  for (float f : v) put<float>(b, f);
  return b;
}

struct Image {
  uint32_t version = 3;
  std::vector<Kv> kv = {{"general.architecture", 8, str_val("deepseek2")},
                        {"general.alignment", 4, val<uint32_t>(32)},
                        {"tokenizer.ggml.tokens", 9, str_array({"a", "b", "<0x0A>"})},
                        {"tokenizer.ggml.scores", 9, f32_array({0.f, -1.f, -2.f})},
                        {"deepseek2.block_count", 4, val<uint32_t>(2)},
                        {"deepseek2.rope.freq_base", 6, val<float>(10000.f)},
                        {"tokenizer.ggml.add_bos_token", 7, val<uint8_t>(1)}};
  std::vector<Ti> tensors = {{"token_embd.weight", {4, 3}, 0, -1, 48}, {"blk.0.attn_q.weight", {32, 2}, 8, -1, 68}};
  int64_t n_tensors = -1, n_kv = -1;  // -1: the real counts
  uint32_t align = 32;

  std::vector<uint8_t> bytes() const {
    std::vector<uint8_t> b = {'G', 'G', 'U', 'F'};
    put<uint32_t>(b, version);
    put<uint64_t>(b, n_tensors >= 0 ? uint64_t(n_tensors) : tensors.size());
    put<uint64_t>(b, n_kv >= 0 ? uint64_t(n_kv) : kv.size());
    for (const Kv& k : kv) {
      put_str(b, k.key);
      put<uint32_t>(b, k.type);
      b.insert(b.end(), k.payload.begin(), k.payload.end());
    }
    uint64_t off = 0;
    for (const Ti& t : tensors) {
      put_str(b, t.name);
      put<uint32_t>(b, uint32_t(t.ne.size()));
      for (uint64_t d : t.ne) put<uint64_t>(b, d);
      put<uint32_t>(b, t.type);
      put<uint64_t>(b, t.offset >= 0 ? uint64_t(t.offset) : off);
      off = (off + t.bytes + align - 1) / align * align;
    }
    while (b.size() % align) b.push_back(0);
    for (const Ti& t : tensors) {
      for (uint64_t i = 0; i < t.bytes; ++i) b.push_back(uint8_t(i * 13 + 5));
      while (b.size() % align) b.push_back(0);
    }
    return b;
  }
};

}  // namespace ds::io::test
