// SPDX-License-Identifier: MIT
#include "model/random_weights.h"

#include <cstring>

#include "base/error.h"

namespace ds::model {

namespace {
enum Fill { kRandom = 0, kOnes = 1, kZero = 2, kScale = 3 };

uint64_t splitmix(uint64_t& s) {
  uint64_t z = (s += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

void fill_random(uint8_t* p, size_t n, DType dt, uint64_t seed) {
  uint64_t s = seed;
  if (dt == DType::BF16) {
    // sign | exponent 119..122 (|w| ~ 0.004..0.03) | random mantissa
    auto* h = reinterpret_cast<uint16_t*>(p);
    for (size_t i = 0; i < n; i += 4) {
      uint64_t r = splitmix(s);
      for (size_t j = 0; j < 4 && i + j < n; ++j, r >>= 16)
        h[i + j] = uint16_t((r & 0x807f) | ((119 + ((r >> 7) & 3)) << 7));
    }
  } else if (dt == DType::F8_E4M3) {
    // sign | exponent 4..7 | random mantissa: never NaN (0x7f/0xff).
    for (size_t i = 0; i < n; i += 8) {
      uint64_t r = splitmix(s);
      for (size_t j = 0; j < 8 && i + j < n; ++j, r >>= 8) p[i + j] = uint8_t((r & 0x87) | ((4 + ((r >> 3) & 3)) << 3));
    }
  } else {
    DS_ASSERT(false);
  }
}
}  // namespace

RandomWeights::RandomWeights(const io::ModelConfig& c, DType linear_dtype, uint64_t seed) {
  DS_CHECK(linear_dtype == DType::BF16 || linear_dtype == DType::F8_E4M3, "random weights: dtype ",
           dtype_name(linear_dtype), " is not supported (bf16 or fp8)");
  uint64_t k = seed;
  for (const TensorSpec& s : weight_specs(c)) {
    const bool is_norm = s.shape.size() == 1 && !s.fp32_only;
    if (s.fp32_only) {
      add(s.name, DType::F32, s.shape, 0, kZero);
    } else if (is_norm) {
      add(s.name, DType::BF16, s.shape, 0, kOnes);
    } else if (s.linear && linear_dtype == DType::F8_E4M3 && s.name.find("eh_proj") == std::string::npos &&
               s.name.find("lm_head") == std::string::npos && s.name.find("shared_head") == std::string::npos) {
      add(s.name, DType::F8_E4M3, s.shape, ++k, kRandom);
      add(s.name + "_scale_inv", DType::F32, {(s.shape[0] + 127) / 128, (s.shape[1] + 127) / 128}, 0, kScale);
    } else {
      add(s.name, DType::BF16, s.shape, ++k, kRandom);
    }
  }
}

void RandomWeights::add(const std::string& name, DType dt, std::vector<int64_t> shape, uint64_t seed, int fill) {
  size_t n = 1;
  for (int64_t d : shape) n *= size_t(d);
  const size_t bytes = n * size_t(dtype_size(dt));
  Entry e;
  e.mem = HugePageBuffer(bytes, "random weights");
  uint8_t* p = e.mem.data();
  if (fill == kRandom) fill_random(p, n, dt, seed * 0x2545f4914f6cdd1dull);
  else if (fill == kZero) std::memset(p, 0, bytes);
  else if (fill == kOnes) for (size_t i = 0; i < n; ++i) reinterpret_cast<uint16_t*>(p)[i] = 0x3f80;  // bf16 1.0
  else for (size_t i = 0; i < n; ++i) reinterpret_cast<float*>(p)[i] = 0.004f;  // fp8 block scale
  e.t = {p, dt, std::move(shape)};
  bytes_ += bytes;
  tensors_[name] = std::move(e);
}

void RandomWeights::release(const void* data) {
  for (auto& kv : tensors_)
    if (kv.second.t.data == data && kv.second.mem.data()) {
      kv.second.mem = HugePageBuffer();
      return;
    }
}

TensorLookup RandomWeights::lookup() const {
  return [this](const std::string& name, RawTensor* out) {
    auto it = tensors_.find(name);
    if (it == tensors_.end()) return false;
    *out = it->second.t;
    return true;
  };
}

std::vector<std::string> RandomWeights::names() const {
  std::vector<std::string> r;
  for (const auto& kv : tensors_) r.push_back(kv.first);
  return r;
}

}  // namespace ds::model
