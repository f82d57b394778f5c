// SPDX-License-Identifier: MIT
// Op test harness: random inputs and weights in every dtype, the ref backend as the oracle, and the CPU runner that
// executes a case at every ISA level this machine has and with 1 and 2 threads, comparing each result to ref (NMSE
// and max-abs error relative to the output scale) and the thread counts to each other (bitwise). A case is written
// once against ops::Backend with its inputs placed in that backend's memory (Mem), so the same case runs on every
// backend: the cases are in op_cases.h, the CUDA runner in cuda_harness.h.
#pragma once
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "backend/cpu/cpu_backend.h"
#include "backend/cpu/isa.h"
#include "base/dtype.h"
#include "base/quant.h"
#include "base/weight.h"
#include "ops/ref/ref_backend.h"

namespace ds::test {

struct Rng {
  std::mt19937_64 g;
  explicit Rng(uint64_t seed) : g(seed) {}
  float uni(float lo = -1.0f, float hi = 1.0f) { return std::uniform_real_distribution<float>(lo, hi)(g); }
  int64_t idx(int64_t n) { return std::uniform_int_distribution<int64_t>(0, n - 1)(g); }
  std::vector<float> vec(size_t n, float lo = -1.0f, float hi = 1.0f) {
    std::vector<float> v(n);
    for (auto& x : v) x = uni(lo, hi);
    return v;
  }
};

// A weight matrix that owns its bytes (and FP8 block scales); `view` points into it.
struct OwnedWeight {
  std::vector<uint8_t> bytes;
  std::vector<float> scale;
  WeightView view;
};

// ggml block formats: random bytes, with every fp16 scale field (and IQ1_M's scale spread over the high nibbles of
// its four sub-block scales) set to a finite moderate value, so that blocks hold all index/sign/sub-scale patterns
// and dequantise to finite values of magnitude ~1.
inline void randomize_blocks(Rng& rng, DType dt, uint8_t* p, int64_t n_blocks) {
  const QuantFormat* f = quant_format(dt);
  auto put_f16 = [&](uint8_t* b, int off) {
    const uint16_t h = f32_to_f16(rng.uni(2e-3f, 2e-2f));
    std::memcpy(b + off, &h, 2);
  };
  for (int64_t i = 0; i < n_blocks; ++i) {
    uint8_t* b = p + i * f->block_bytes;
    for (int j = 0; j < f->block_bytes; ++j) b[j] = uint8_t(rng.idx(256));
    switch (dt) {
      case DType::Q4_1: case DType::Q5_1: case DType::Q4_K: case DType::Q5_K: put_f16(b, 0); put_f16(b, 2); break;
      case DType::Q2_K: put_f16(b, 80); put_f16(b, 82); break;
      case DType::Q3_K: put_f16(b, 108); break;
      case DType::Q6_K: put_f16(b, 208); break;
      case DType::IQ1_M: {
        const uint16_t h = f32_to_f16(rng.uni(2e-3f, 2e-2f));
        for (int k = 0; k < 4; ++k) {
          uint16_t sc;
          std::memcpy(&sc, b + 48 + 2 * k, 2);
          sc = uint16_t((sc & 0x0fff) | (((h >> (4 * k)) & 0xf) << 12));
          std::memcpy(b + 48 + 2 * k, &sc, 2);
        }
        break;
      }
      default: put_f16(b, 0); break;  // Q4_0, Q5_0, Q8_0, IQ4_NL and the i-quants: d first
    }
  }
}

// Random [rows, cols] weights in `dt`. FP8: random non-NaN bytes (all exponents, subnormals included);
// `scaled` adds a 128x128 block-scale grid (partial edge blocks when rows/cols are not multiples of 128). Block
// formats: randomize_blocks (cols a multiple of the block).
inline OwnedWeight make_weight(Rng& rng, DType dt, int64_t rows, int64_t cols, bool scaled = false) {
  OwnedWeight w;
  const int64_t n = rows * cols;
  if (is_block_dtype(dt)) {
    w.bytes.resize(size_t(rows * row_bytes(dt, cols)) + 1);
    randomize_blocks(rng, dt, w.bytes.data(), rows * cols / quant_format(dt)->block);
  } else {
    w.bytes.resize(size_t(n * dtype_size(dt)) + 1);
  }
  for (int64_t i = 0; i < n && !is_block_dtype(dt); ++i) {
    const float v = rng.uni();
    switch (dt) {
      case DType::F32: std::memcpy(&w.bytes[i * 4], &v, 4); break;
      case DType::BF16: { const uint16_t h = f32_to_bf16(v); std::memcpy(&w.bytes[i * 2], &h, 2); break; }
      case DType::F16: { const uint16_t h = f32_to_f16(v); std::memcpy(&w.bytes[i * 2], &h, 2); break; }
      case DType::F8_E4M3: {
        uint8_t b = uint8_t(rng.idx(256));
        if ((b & 0x7f) == 0x7f) b ^= 0x01;  // no NaNs
        w.bytes[i] = b;
        break;
      }
      default: break;
    }
  }
  w.view.data = w.bytes.data();
  w.view.dtype = dt;
  w.view.rows = rows;
  w.view.cols = cols;
  if (scaled) {
    const int64_t sr = (rows + 127) / 128, sc = (cols + 127) / 128;
    w.scale = rng.vec(size_t(sr * sc), 1e-3f, 4e-3f);
    w.view.scale = w.scale.data();
    w.view.scale_cols = sc;
  }
  return w;
}

struct Budget {
  double nmse = 1e-10;     // sum (a - b)^2 / sum b^2
  double max_rel = 2e-5;   // max |a - b| / max |b|
};

inline void expect_close(const std::vector<float>& got, const std::vector<float>& want, const Budget& b,
                         const std::string& what) {
  ASSERT_EQ(got.size(), want.size()) << what;
  ASSERT_FALSE(want.empty()) << what << ": empty comparison";
  double num = 0.0, den = 0.0, maxd = 0.0, maxw = 0.0;
  for (size_t i = 0; i < want.size(); ++i) {
    ASSERT_TRUE(std::isfinite(got[i])) << what << " at " << i;
    ASSERT_TRUE(std::isfinite(want[i])) << what << ": reference not finite at " << i;
    const double d = double(got[i]) - want[i];
    num += d * d;
    den += double(want[i]) * want[i];
    maxd = std::max(maxd, std::fabs(d));
    maxw = std::max(maxw, std::fabs(double(want[i])));
  }
  ASSERT_GT(maxw, 0.0) << what << ": reference output is all zero (vacuous case)";
  if (std::getenv("DS_PRINT_NMSE")) std::printf("NMSE %s %.3g max_rel %.3g\n", what.c_str(), num / den, maxd / maxw);
  EXPECT_LE(num / den, b.nmse) << what;
  EXPECT_LE(maxd / maxw, b.max_rel) << what << " (max abs diff " << maxd << ", scale " << maxw << ")";
}

// Backend memory for one op run; buffers are released with it.
struct Mem {
  ops::Backend& be;
  std::vector<std::unique_ptr<ops::Buffer>> keep;

  template <typename T>
  T* put(const std::vector<T>& v) {
    keep.push_back(be.alloc(v.size() * sizeof(T)));
    be.upload(keep.back()->data(), v.data(), v.size() * sizeof(T));
    return static_cast<T*>(keep.back()->data());
  }
  template <typename T>
  std::vector<T> get(const T* p, size_t n) {
    std::vector<T> v(n);
    be.download(v.data(), p, n * sizeof(T));
    return v;
  }
  WeightView w(const WeightView& v) { return be.prepare_weight(v); }
  // A weight the op only multiplies (a backend may choose its matmul layout, e.g. the cpu backend's Rows16).
  WeightView wm(const WeightView& v) { return be.prepare_weight(v, ops::WeightUse::MatmulOnly); }
};

// One op run: fills the output from identical inputs on every call and returns it (downloaded to the host).
using DevOp = std::function<std::vector<float>(ops::Backend&, Mem&)>;
// Runs `op` on ref and on the backend(s) under test, comparing each result to ref within the budget.
using Runner = std::function<void(const std::string& what, const Budget& b, const DevOp& op)>;

inline std::vector<float> run_on(ops::Backend& be, const DevOp& op) {
  Mem m{be, {}};
  std::vector<float> out = op(be, m);
  be.sync();
  return out;
}

// Every ISA level up to what this CPU supports.
inline std::vector<cpu::Isa> isa_levels() {
  std::vector<cpu::Isa> v;
  for (int i = 0; i <= int(cpu::detected_isa()); ++i) v.push_back(cpu::Isa(i));
  return v;
}

// Which ISA levels check_op ran in this process (printed by IsaReport, ops_test.cpp).
inline std::vector<bool>& isa_levels_run() {
  static std::vector<bool> v(size_t(cpu::Isa::Avx512Bf16) + 1, false);
  return v;
}

// The CPU runner: `op` on ref, then on cpu at every ISA level with 1 and 2 threads, with weights used in place and
// with the backend's own copies (own_weights: Rows16 for what the op only multiplies); each compared to ref within
// `b`, and 1 vs 2 threads bitwise.
inline void check_op(const std::string& what, const Budget& b, const DevOp& op) {
  auto ref = ref::make_ref_backend();
  const std::vector<float> want = run_on(*ref, op);
  for (cpu::Isa isa : isa_levels()) {
    isa_levels_run()[size_t(isa)] = true;
    cpu::set_isa_cap(isa);
    for (bool own : {false, true}) {
      std::vector<float> first;
      for (int nt : {1, 2}) {
        auto be = cpu::make_cpu_backend(nt, own);
        const std::vector<float> got = run_on(*be, op);
        const std::string tag = what + " [" + cpu::isa_name(isa) + ", " + std::to_string(nt) + "t" +
                                (own ? ", own weights" : "") + "]";
        expect_close(got, want, b, tag);
        if (nt == 1) first = got;
        else EXPECT_EQ(0, std::memcmp(first.data(), got.data(), got.size() * 4)) << tag << ": differs from 1 thread";
      }
    }
  }
  cpu::set_isa_cap(cpu::Isa::Avx512Bf16);
}

}  // namespace ds::test
