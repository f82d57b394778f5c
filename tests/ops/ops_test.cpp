// SPDX-License-Identifier: MIT
// CPU element-wise ops, MLA attention (both forms) and MoE vs the reference, at every ISA level and thread count.
#include <algorithm>

#include "ops/op_harness.h"

namespace ds::test {
namespace {

const Budget kExactish{1e-12, 1e-6};  // same formula as ref, fp32 rounding-order differences only
const Budget kF32{1e-10, 2e-5};       // fp32 dot products / softmax vs the fp64 reference
const Budget kFast{1e-4, 1e-2};       // bf16-rounded activations (see matmul_test.cpp)

TEST(CpuOps, RmsNorm) {
  for (DType dt : {DType::F32, DType::BF16})
    for (int64_t n : {7, 64, 2049}) {
      Rng rng{uint64_t(n)};
      OwnedWeight w = make_weight(rng, dt, 1, n);
      const int64_t M = 5, ld = n + 3;
      const std::vector<float> x = rng.vec(size_t(M * ld));
      check_op("rms_norm n" + std::to_string(n), kExactish, [&](ops::Backend& be) {
        std::vector<float> y = x;  // in place
        be.rms_norm(ops::RmsNormParams{y.data(), ld, w.view, y.data(), ld, M, n, 1e-6f});
        return y;
      });
    }
}

TEST(CpuOps, RopeSiluAddCopy) {
  Rng rng(7);
  const int64_t M = 6, H = 3, dim = 64, hs = 96, ld = H * hs + 4;
  const std::vector<float> x = rng.vec(size_t(M * ld));
  std::vector<int32_t> pos = {0, 1, 5, 100, 4095, 77};
  const std::vector<float> inv = rng.vec(dim / 2, 0.001f, 1.0f);
  check_op("rope", kExactish, [&](ops::Backend& be) {
    std::vector<float> y = x;
    be.rope(ops::RopeParams{y.data(), ld, hs, M, H, dim, pos.data(), inv.data(), 1.3f});
    return y;
  });
  const int64_t n = 1000;
  const std::vector<float> g = rng.vec(size_t(M * 1003), -8, 8), u = rng.vec(size_t(M * 1001));
  check_op("silu_mul", kExactish, [&](ops::Backend& be) {
    std::vector<float> o(size_t(M * 1002));
    be.silu_mul(ops::SiluMulParams{g.data(), 1003, u.data(), 1001, o.data(), 1002, M, n});
    return o;
  });
  check_op("add (aliased)", kExactish, [&](ops::Backend& be) {
    std::vector<float> a = g;
    be.add(ops::AddParams{a.data(), 1003, u.data(), 1001, a.data(), 1003, M, n});
    return a;
  });
  check_op("copy", kExactish, [&](ops::Backend& be) {
    std::vector<float> d(size_t(M * 1010));
    be.copy(ops::CopyParams{g.data(), 1003, d.data(), 1010, M, n});
    return d;
  });
}

TEST(CpuOps, Embed) {
  struct { DType dt; bool scaled; } cases[] = {
      {DType::F32, false}, {DType::BF16, false}, {DType::F16, false}, {DType::F8_E4M3, true}};
  for (auto c : cases) {
    Rng rng(11);
    OwnedWeight t = make_weight(rng, c.dt, 300, 200, c.scaled);
    std::vector<int32_t> ids = {0, 299, 128, 127, 5};
    check_op(std::string("embed ") + std::string(dtype_name(c.dt)), kExactish, [&](ops::Backend& be) {
      std::vector<float> o(size_t(5 * 210));
      be.embed(ops::EmbedParams{t.view, ids.data(), o.data(), 210, 5});
      return o;
    });
  }
}

TEST(CpuOps, MlaDecode) {
  for (int64_t T : {1, 3})
    for (int64_t S : {1, 37, 300}) {
      Rng rng(uint64_t(T * 100 + S));
      const int64_t H = 4, rank = 96, rope = 16, ldq = H * (rank + rope) + 2, ldkv = rank + rope + 5;
      const std::vector<float> q = rng.vec(size_t(T * ldq)), kv = rng.vec(size_t(S * ldkv));
      const int64_t pos0 = S - T;  // queries are the last T positions
      check_op("mla_decode T" + std::to_string(T) + " S" + std::to_string(S), kF32, [&](ops::Backend& be) {
        std::vector<float> o(size_t(T * H * rank));
        ops::MlaDecodeParams p;
        p.q = q.data(); p.ldq = ldq; p.kv = kv.data(); p.ldkv = ldkv; p.out = o.data(); p.ldo = H * rank;
        p.T = T; p.S = S; p.H = H; p.rank = rank; p.rope = rope; p.pos0 = std::max<int64_t>(pos0, 0); p.scale = 0.2f;
        be.mla_decode(p);
        return o;
      });
    }
}

// The same attention over a paged cache: rows scattered over shuffled blocks of odd sizes, inside a pool with
// several layers (the block stride skips the other layers). CPU against ref, and bitwise equal to the contiguous
// layout (paging must not change a single bit).
TEST(CpuOps, MlaDecodePaged) {
  for (int64_t bs : {1, 3, 7, 16})
    for (int64_t T : {1, 3})
      for (int64_t S : {1, 5, 37, 300}) {
        Rng rng(uint64_t(bs * 10000 + T * 1000 + S));
        const int64_t H = 4, rank = 96, rope = 16, ldq = H * (rank + rope) + 2, ldkv = rank + rope + 5;
        const int64_t n_layers = 3, layer = 1, nb = (S + bs - 1) / bs, pool_blocks = nb + 4;
        const int64_t stride = n_layers * bs * ldkv;
        const std::vector<float> q = rng.vec(size_t(T * ldq)), kv = rng.vec(size_t(S * ldkv));
        std::vector<float> pool = rng.vec(size_t(pool_blocks * stride));  // other layers / unused rows: noise
        std::vector<int32_t> table(static_cast<size_t>(pool_blocks));
        for (int64_t i = 0; i < pool_blocks; ++i) table[size_t(i)] = int32_t(i);
        std::shuffle(table.begin(), table.end(), rng.g);
        table.resize(size_t(nb));
        for (int64_t t = 0; t < S; ++t)
          std::copy_n(&kv[size_t(t * ldkv)], ldkv, &pool[size_t(table[size_t(t / bs)] * stride + layer * bs * ldkv + (t % bs) * ldkv)]);
        const int64_t pos0 = std::max<int64_t>(S - T, 0);
        auto run = [&](ops::Backend& be, bool paged) {
          std::vector<float> o(size_t(T * H * rank));
          ops::MlaDecodeParams p;
          p.q = q.data(); p.ldq = ldq; p.out = o.data(); p.ldo = H * rank;
          if (paged) {
            p.kv = pool.data() + layer * bs * ldkv; p.ldkv = ldkv;
            p.block_table = table.data(); p.block_size = bs; p.block_stride = stride;
          } else {
            p.kv = kv.data(); p.ldkv = ldkv;
          }
          p.T = T; p.S = S; p.H = H; p.rank = rank; p.rope = rope; p.pos0 = pos0; p.scale = 0.2f;
          be.mla_decode(p);
          return o;
        };
        const std::string tag = "mla_decode paged bs" + std::to_string(bs) + " T" + std::to_string(T) + " S" + std::to_string(S);
        check_op(tag, kF32, [&](ops::Backend& be) { return run(be, true); });
        auto cpu = cpu::make_cpu_backend(2);
        const auto a = run(*cpu, true), b = run(*cpu, false);
        EXPECT_EQ(0, std::memcmp(a.data(), b.data(), a.size() * 4)) << tag << ": paged differs from contiguous";
      }
}

TEST(CpuOps, MlaPrefill) {
  for (int64_t T : {1, 9, 40}) {
    Rng rng{uint64_t(T)};
    const int64_t H = 3, nope = 40, rope = 8, dv = 33, S = T + 5, pos0 = 5;
    const int64_t ldq = H * (nope + rope), ldk = H * 48, ldv = H * 40 + 1;
    const std::vector<float> q = rng.vec(size_t(T * ldq)), k = rng.vec(size_t(S * ldk));
    const std::vector<float> kpe = rng.vec(size_t(S * 10)), v = rng.vec(size_t(S * ldv));
    check_op("mla_prefill T" + std::to_string(T), kF32, [&](ops::Backend& be) {
      std::vector<float> o(size_t(T * H * dv));
      ops::MlaPrefillParams p;
      p.q = q.data(); p.ldq = ldq; p.k_nope = k.data(); p.ldk = ldk; p.hsk = 48; p.k_pe = kpe.data(); p.ldkpe = 10;
      p.v = v.data(); p.ldv = ldv; p.hsv = 40; p.out = o.data(); p.ldo = H * dv;
      p.T = T; p.S = S; p.H = H; p.nope = nope; p.rope = rope; p.dv = dv; p.pos0 = pos0; p.scale = 0.15f;
      be.mla_prefill(p);
      return o;
    });
  }
}

TEST(CpuOps, Moe) {
  struct { DType dt; bool scaled; ops::Precision prec; } cases[] = {
      {DType::BF16, false, ops::Precision::F32}, {DType::F8_E4M3, true, ops::Precision::F32},
      {DType::BF16, false, ops::Precision::Fast}, {DType::F8_E4M3, true, ops::Precision::Fast}};
  for (auto c : cases)
    for (int64_t T : {1, 5, 40}) {
      Rng rng(uint64_t(T) * 31 + int(c.dt));
      const int64_t E = 8, k = 3, D = 200, inter = 144;
      std::vector<OwnedWeight> ws;
      std::vector<ops::ExpertWeights> ex(E);
      for (int64_t e = 0; e < E; ++e) {
        ws.push_back(make_weight(rng, c.dt, inter, D, c.scaled));
        ws.push_back(make_weight(rng, c.dt, inter, D, c.scaled));
        ws.push_back(make_weight(rng, c.dt, D, inter, c.scaled));
      }
      for (int64_t e = 0; e < E; ++e) ex[e] = {ws[3 * e].view, ws[3 * e + 1].view, ws[3 * e + 2].view};
      std::vector<int32_t> ids(size_t(T * k));
      for (int64_t t = 0; t < T; ++t)
        for (int64_t j = 0; j < k; ++j) ids[t * k + j] = int32_t((t * 5 + j * 3 + (t % 3)) % E);  // distinct per t
      const std::vector<float> wts = rng.vec(size_t(T * k), 0.1f, 1.0f);
      const float xs = c.scaled ? 40.0f : 1.0f;  // FP8 weights are small once scaled: keep outputs O(1)
      const std::vector<float> x = rng.vec(size_t(T * (D + 1)), -xs, xs), y0 = rng.vec(size_t(T * D));
      const std::string what = std::string("moe ") + std::string(dtype_name(c.dt)) + " T" + std::to_string(T) +
                               (c.prec == ops::Precision::Fast ? " fast" : "");
      check_op(what, c.prec == ops::Precision::Fast ? kFast : kF32, [&](ops::Backend& be) {
        std::vector<float> y = y0;
        ops::MoeParams p;
        p.x = x.data(); p.ldx = D + 1; p.ids = ids.data(); p.weights = wts.data(); p.experts = ex.data();
        p.y = y.data(); p.ldy = D; p.T = T; p.D = D; p.k = k; p.E = E; p.inter = inter; p.precision = c.prec;
        be.moe(p);
        for (size_t i = 0; i < y.size(); ++i) y[i] -= y0[i];  // compare the MoE contribution itself
        return y;
      });
    }
}

}  // namespace
}  // namespace ds::test
