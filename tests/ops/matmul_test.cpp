// SPDX-License-Identifier: MIT
// CPU matmul vs the reference: every weight dtype (FP8 with and without block scales, partial blocks, row slices),
// odd shapes, strides, accumulate, w_kn, decode (M <= 8) and prefill (M > 8) paths, threaded splits, F32 and Fast
// precision. The case itself is shared with the CUDA tests (op_cases.h); the shape lists here follow the CPU kernels.
#include <cmath>
#include <cstring>
#include <iterator>

#include "ops/op_cases.h"

namespace ds::test {
namespace {

void run_case(const MmCase& c) { matmul_case(c, check_op); }

TEST(CpuMatmul, OddShapesAllDtypes) {
  for (const DtCase& d : kDtypes)
    for (int64_t M : {1, 3, 17})
      for (int64_t N : {1, 7, 130, 257})
        for (int64_t K : {5, 33, 130, 300}) run_case({d.dt, d.scaled, M, N, K});
}

// ggml block formats (base/quant.h): every weight format, rows of 1-3 blocks and more, odd N, decode and prefill M,
// F32 (exactly dequantised rows, fp32 dots) and Fast (int8 activation blocks: ref quantises x the same way, so
// the integer dots leave only fp32 sum order), accumulate. Each ISA level on the host (check_op).
constexpr DType kBlockTypes[] = {DType::Q4_0,    DType::Q4_1,   DType::Q5_0,    DType::Q5_1,  DType::Q8_0,
                                 DType::IQ4_NL,  DType::Q2_K,   DType::Q3_K,    DType::Q4_K,  DType::Q5_K,
                                 DType::Q6_K,    DType::IQ4_XS, DType::IQ2_XXS, DType::IQ2_XS, DType::IQ2_S,
                                 DType::IQ3_XXS, DType::IQ3_S,  DType::IQ1_S,   DType::IQ1_M};

TEST(CpuMatmul, BlockFormats) {
  for (DType dt : kBlockTypes) {
    const int64_t B = quant_format(dt)->block;
    for (ops::Precision prec : {ops::Precision::F32, ops::Precision::Fast})
      for (int64_t M : {1, 3, 8, 13})
        for (int64_t N : {6, 37})  // several outputs: a lone dot of offset weights (Q4_1) may cancel to ~0
          for (int64_t nb : {1, 3}) run_case({dt, false, M, N, nb * B, M == 3, false, prec});
    run_case({dt, false, 2, 129, 8 * B, false, false, ops::Precision::Fast});  // threaded split
  }
}

// Embedding rows gathered from a block-format table (token_embd is quantised like the other matrices).
TEST(CpuMatmul, BlockFormatEmbedding) {
  for (DType dt : kBlockTypes) {
    Rng rng(11);
    const int64_t cols = 512;
    OwnedWeight t = make_weight(rng, dt, 40, cols);
    const std::vector<int32_t> ids = {0, 39, 17, 17, 5};
    check_op(std::string("embed ") + std::string(dtype_name(dt)), kExactish, [&](ops::Backend& be, Mem& m) {
      float* o = m.put(std::vector<float>(size_t(5 * 520), 0.25f));
      be.embed(ops::EmbedParams{m.w(t.view), m.put(ids), o, 520, 5});
      return m.get(o, size_t(5 * 520));
    });
  }
}

TEST(CpuMatmul, AccumulateAndAllDecodeM) {
  for (const DtCase& d : kDtypes)
    for (int64_t M = 1; M <= 9; ++M) run_case({d.dt, d.scaled, M, 37, 161, true});
}

TEST(CpuMatmul, Fp8RowSlices) {
  // A head slice of kv_b_proj: rows start mid scale-block, so (row0 + r) / 128 crosses blocks inside the view.
  for (int64_t M : {1, 4, 12}) {
    run_case({DType::F8_E4M3, true, M, 130, 300, false, false, ops::Precision::F32, 100});
    run_case({DType::F8_E4M3, true, M, 130, 300, false, false, ops::Precision::Fast, 100});
  }
}

TEST(CpuMatmul, Threaded) {
  // Large enough to run on both threads (decode: N split; prefill: several L2 panels, dynamic schedule).
  for (const DtCase& d : kDtypes) {
    run_case({d.dt, d.scaled, 2, 1000, 384});
    run_case({d.dt, d.scaled, 6, 515, 1000, true});
    run_case({d.dt, d.scaled, 33, 300, 1000});
    run_case({d.dt, d.scaled, 3, 1100, 1000, true});  // > 512 KiB of weights in every dtype: decode splits N
  }
}

TEST(CpuMatmul, FastPrecision) {
  for (const DtCase& d : kDtypes)
    for (int64_t M : {1, 5, 19})
      for (int64_t N : {7, 257})
        for (int64_t K : {33, 300}) run_case({d.dt, d.scaled, M, N, K, M == 5, false, ops::Precision::Fast});
  run_case({DType::BF16, false, 40, 600, 700, false, false, ops::Precision::Fast});
  run_case({DType::F8_E4M3, true, 40, 600, 700, true, false, ops::Precision::Fast});
}

TEST(CpuMatmul, WeightKN) {
  for (const DtCase& d : kDtypes)
    for (int64_t M : {1, 3, 17})
      for (int64_t N : {7, 130, 600})
        run_case({d.dt, d.scaled, M, N, 33 + 64 * int64_t(d.scaled), M == 3, true});
  run_case({DType::F8_E4M3, true, 4, 128, 130, false, true, ops::Precision::F32, 70});
  run_case({DType::BF16, false, 4, 128, 130, true, true, ops::Precision::Fast});
}

// A batch of independent products (mixed dtypes, kn form, decode and prefill sizes, accumulate) gives every product
// bitwise what it gives alone, at every ISA level and thread count; the first against ref too.
TEST(CpuMatmul, BatchIsBitwiseEachAlone) {
  struct P { DType dt; bool scaled, kn, acc; int64_t M, N, K; ops::Precision prec; };
  const P specs[] = {{DType::BF16, false, false, false, 1, 700, 300, ops::Precision::F32},
                     {DType::F8_E4M3, true, false, true, 1, 257, 300, ops::Precision::Fast},
                     {DType::BF16, false, true, false, 1, 130, 64, ops::Precision::F32},
                     {DType::F32, false, false, false, 3, 33, 70, ops::Precision::F32},
                     {DType::BF16, false, false, true, 2, 1500, 512, ops::Precision::Fast},
                     {DType::BF16, false, false, false, 12, 100, 96, ops::Precision::F32}};
  Rng rng(5);
  std::vector<OwnedWeight> ws;
  std::vector<std::vector<float>> xs, y0s;
  for (const P& s : specs) {
    ws.push_back(make_weight(rng, s.dt, s.kn ? s.K : s.N, s.kn ? s.N : s.K, s.scaled));
    xs.push_back(rng.vec(size_t(s.M * s.K)));
    y0s.push_back(rng.vec(size_t(s.M * s.N)));
  }
  auto params = [&](std::vector<std::vector<float>>& ys) {
    std::vector<ops::MatmulParams> ps;
    for (size_t i = 0; i < std::size(specs); ++i) {
      const P& s = specs[i];
      ops::MatmulParams p;
      p.x = xs[i].data(); p.ldx = s.K; p.w = ws[i].view; p.w_kn = s.kn; p.y = ys[i].data(); p.ldy = s.N;
      p.M = s.M; p.N = s.N; p.K = s.K; p.accumulate = s.acc; p.precision = s.prec;
      ps.push_back(p);
    }
    return ps;
  };
  for (cpu::Isa isa : isa_levels()) {
    cpu::set_isa_cap(isa);
    for (int nt : {1, 2}) {
      auto be = cpu::make_cpu_backend(nt);
      std::vector<std::vector<float>> alone = y0s, batched = y0s;
      for (const auto& p : params(alone)) be->matmul(p);
      const auto ps = params(batched);
      be->matmul_batch(ps.data(), ps.size());
      for (size_t i = 0; i < alone.size(); ++i)
        EXPECT_EQ(0, std::memcmp(alone[i].data(), batched[i].data(), alone[i].size() * 4))
            << "product " << i << " [" << cpu::isa_name(isa) << ", " << nt << "t]";
    }
  }
  cpu::set_isa_cap(cpu::Isa::Avx512Bf16);
  std::vector<std::vector<float>> ref_y = y0s, cpu_y = y0s;
  const auto pr = params(ref_y), pc = params(cpu_y);
  auto ref = ref::make_ref_backend();
  for (const auto& p : pr) ref->matmul(p);
  cpu::make_cpu_backend(2)->matmul_batch(pc.data(), pc.size());
  expect_close(cpu_y[0], ref_y[0], kF32, "batch product 0 vs ref");
}

// FP8 weights in the backend's own layout (Rows16) at every ISA level: 64-byte lines of ordinary codes convert by
// bit maps (GFNI), lines holding a zero, a subnormal, a code of the lowest normal binade or a NaN through byte
// tables. Every code once among ordinary ones, against a double-precision product of the exact weights (random
// bytes elsewhere put a special code in nearly every line, so only this case runs the bit maps at length).
TEST(CpuMatmul, Fp8OwnLayoutConvertsEveryCodeExactly) {
  const int64_t N = 48, K = 512, M = 3;
  Rng rng(11);
  OwnedWeight w = make_weight(rng, DType::F8_E4M3, N, K, /*scaled=*/true);
  for (int64_t i = 0; i < N * K; ++i) {  // exponent 2..15, no NaN
    uint8_t b;
    do b = uint8_t(rng.idx(256)); while (((b >> 3) & 15) < 2 || (b & 0x7f) == 0x7f);
    w.bytes[size_t(i)] = b;
  }
  for (int c = 0; c < 16; ++c) {  // zero, subnormals and e = 1, both signs, each in a line of its own
    w.bytes[size_t((2 * c) * K + 64 * (c % 8) + c)] = uint8_t(c);
    w.bytes[size_t((2 * c + 1) * K + 64 * (c % 8) + 3 * c)] = uint8_t(0x80 | c);
  }
  w.bytes[size_t(40 * K + 77)] = 0x7f;   // NaN: row 40's outputs are NaN
  w.bytes[size_t(41 * K + 300)] = 0xff;  // and row 41's
  const std::vector<float> x = rng.vec(size_t(M * K), -40.0f, 40.0f);
  for (cpu::Isa isa : isa_levels()) {
    cpu::set_isa_cap(isa);
    for (ops::Precision prec : {ops::Precision::F32, ops::Precision::Fast}) {
      auto be = cpu::make_cpu_backend(2, true);
      const WeightView wv = be->prepare_weight(w.view, ops::WeightUse::MatmulOnly);
      ASSERT_EQ(wv.layout, WeightLayout::Rows16);
      if (isa == cpu::Isa::Avx512Bf16 && prec == ops::Precision::F32) {
        // The line bitmap: line l of block b (columns 4l..4l+3 of rows 16b..16b+15) is marked ordinary exactly when
        // none of its codes is zero, subnormal, of the lowest binade below 0x0f, or NaN.
        const int64_t lines = K / 4, bb = rows16_block_bytes(DType::F8_E4M3, K);
        int64_t cleared = 0;
        for (int64_t b = 0; b < N / 16; ++b)
          for (int64_t l = 0; l < lines; ++l) {
            bool special = false;
            for (int64_t r = 16 * b; r < 16 * b + 16; ++r)
              for (int64_t c = 4 * l; c < 4 * l + 4; ++c) {
                const int code = w.bytes[size_t(r * K + c)] & 0x7f;
                special = special || code <= 0x0e || code == 0x7f;
              }
            const uint8_t* bits = static_cast<const uint8_t*>(wv.data) + b * bb + lines * 64;
            EXPECT_EQ(((bits[l / 8] >> (l % 8)) & 1) == 0, special) << "block " << b << " line " << l;
            cleared += special;
          }
        EXPECT_EQ(cleared, 30) << "lines holding a special code (0x0f / 0x8f are ordinary; some share a line)";
      }
      std::vector<float> y(size_t(M * N));
      ops::MatmulParams p;
      p.x = x.data(); p.ldx = K; p.w = wv; p.y = y.data(); p.ldy = N; p.M = M; p.N = N; p.K = K;
      p.precision = prec;
      be->matmul(p);
      const std::string tag = std::string(prec == ops::Precision::Fast ? "fast" : "f32") + " [" + cpu::isa_name(isa) + "]";
      for (int64_t m = 0; m < M; ++m)
        for (int64_t n = 0; n < N; ++n) {
          const float got = y[size_t(m * N + n)];
          if (n == 40 || n == 41) {
            EXPECT_TRUE(std::isnan(got)) << tag << " row " << n << ": a NaN weight code";
            continue;
          }
          double want = 0, mag = 0;
          for (int64_t k = 0; k < K; ++k) {
            // Fast rounds x to bf16 first (the driver does); the products are exact either way.
            const float xv = prec == ops::Precision::Fast ? bf16_to_f32(f32_to_bf16(x[size_t(m * K + k)])) : x[size_t(m * K + k)];
            want += double(xv) * double(w.view.at(n, k));
            mag += std::fabs(double(xv) * double(w.view.at(n, k)));
          }
          EXPECT_LE(std::fabs(double(got) - want), 1e-5 * mag) << tag << " token " << m << " row " << n;
        }
    }
  }
  cpu::set_isa_cap(cpu::Isa::Avx512Bf16);
}

// A token's outputs do not depend on how many tokens share the product (1, a decode batch of 5, a prefill of 40):
// what lets continuous batching and speculative verification leave every answer unchanged. Both weight placements,
// every ISA level.
TEST(CpuMatmul, RowResultIndependentOfM) {
  const int64_t M = 40, N = 150, K = 300;
  for (const DtCase& d : kDtypes)
    for (ops::Precision prec : {ops::Precision::F32, ops::Precision::Fast}) {
      Rng rng(uint64_t(int(d.dt) * 2 + int(prec)));
      OwnedWeight w = make_weight(rng, d.dt, N, K, d.scaled);
      const std::vector<float> x = rng.vec(size_t(M * K));
      for (cpu::Isa isa : isa_levels()) {
        cpu::set_isa_cap(isa);
        for (bool own : {false, true}) {
          auto be = cpu::make_cpu_backend(2, own);
          const WeightView wv = be->prepare_weight(w.view, ops::WeightUse::MatmulOnly);
          auto run = [&](int64_t m0, int64_t m) {
            std::vector<float> y(size_t(m * N));
            ops::MatmulParams p;
            p.x = x.data() + m0 * K; p.ldx = K; p.w = wv; p.y = y.data(); p.ldy = N; p.M = m; p.N = N; p.K = K;
            p.precision = prec;
            be->matmul(p);
            return y;
          };
          const std::vector<float> all = run(0, M);
          const std::string tag = std::string(dtype_name(d.dt)) + (d.scaled ? "+scale" : "") +
                                  (prec == ops::Precision::Fast ? " fast" : " f32") + " [" + cpu::isa_name(isa) +
                                  (own ? ", own weights]" : "]");
          for (int64_t m0 : {int64_t(0), int64_t(7), int64_t(39)}) {
            const std::vector<float> one = run(m0, 1);
            EXPECT_EQ(0, std::memcmp(one.data(), all.data() + m0 * N, size_t(N) * 4)) << tag << " token " << m0 << " alone";
          }
          const std::vector<float> five = run(10, 5);
          EXPECT_EQ(0, std::memcmp(five.data(), all.data() + 10 * N, five.size() * 4)) << tag << " tokens 10..14";
        }
      }
      cpu::set_isa_cap(cpu::Isa::Avx512Bf16);
    }
}

// Block weights too: a row's result is bitwise the same whatever M it runs in (decode, batched decode, the passes of
// 8 rows a prefill takes), at every ISA level, F32 (qfdot / dequantised rows) and Fast (qdot).
TEST(CpuMatmul, RowResultIndependentOfMBlockFormats) {
  const int64_t M = 19, N = 37;
  for (DType dt : kBlockTypes)
    for (ops::Precision prec : {ops::Precision::F32, ops::Precision::Fast}) {
      const int64_t K = 3 * quant_format(dt)->block;
      Rng rng(uint64_t(int(dt) * 2 + int(prec)));
      OwnedWeight w = make_weight(rng, dt, N, K);
      const std::vector<float> x = rng.vec(size_t(M * K));
      for (cpu::Isa isa : isa_levels()) {
        cpu::set_isa_cap(isa);
        auto be = cpu::make_cpu_backend(2, true);
        const WeightView wv = be->prepare_weight(w.view, ops::WeightUse::MatmulOnly);
        auto run = [&](int64_t m0, int64_t m) {
          std::vector<float> y(size_t(m * N));
          ops::MatmulParams p;
          p.x = x.data() + m0 * K; p.ldx = K; p.w = wv; p.y = y.data(); p.ldy = N; p.M = m; p.N = N; p.K = K;
          p.precision = prec;
          be->matmul(p);
          return y;
        };
        const std::vector<float> all = run(0, M);
        const std::string tag = std::string(dtype_name(dt)) + (prec == ops::Precision::Fast ? " fast" : " f32") +
                                " [" + cpu::isa_name(isa) + "]";
        for (int64_t m0 : {int64_t(0), int64_t(9), int64_t(18)}) {
          const std::vector<float> one = run(m0, 1);
          EXPECT_EQ(0, std::memcmp(one.data(), all.data() + m0 * N, size_t(N) * 4)) << tag << " token " << m0 << " alone";
        }
        for (int64_t m : {2, 3, 5}) {
          const std::vector<float> some = run(4, m);
          EXPECT_EQ(0, std::memcmp(some.data(), all.data() + 4 * N, some.size() * 4)) << tag << " tokens 4.." << 3 + m;
        }
      }
      cpu::set_isa_cap(cpu::Isa::Avx512Bf16);
    }
}

}  // namespace
}  // namespace ds::test
