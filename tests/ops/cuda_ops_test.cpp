// SPDX-License-Identifier: MIT
// CUDA element-wise ops, routing, MoE and MLA attention (both forms) vs the reference, on odd shapes.
#include <algorithm>
#include <cstring>
#include <numeric>

#include "ops/cuda_harness.h"

namespace ds::test {
namespace {

const Budget kExactish{1e-12, 1e-6};  // same formula as ref, fp32 rounding differences only
const Budget kF32{1e-10, 2e-5};       // fp32 dot products / online softmax vs the fp64 reference
// MoE in Fast precision: the hidden activations are rounded to bf16 before the down product, and a last-ulp fp32
// difference before that rounding can move one value by a bf16 ulp (2^-8): the CPU tests' budget for the same case.
const Budget kFast{1e-4, 1e-2};

TEST_F(CudaOps, RmsNorm) {
  for (DType dt : {DType::F32, DType::BF16})
    for (int64_t n : {7, 64, 2049}) {
      Rng rng{uint64_t(n)};
      OwnedWeight w = make_weight(rng, dt, 1, n);
      const int64_t M = 5, ld = n + 3;
      const std::vector<float> x = rng.vec(size_t(M * ld));
      check_cuda("rms_norm n" + std::to_string(n), kExactish, [&](ops::Backend& be, Mem& m) {
        float* y = m.put(x);  // in place
        be.rms_norm(ops::RmsNormParams{y, ld, m.w(w.view), y, ld, M, n, 1e-6f});
        return m.get(y, x.size());
      });
    }
}

TEST_F(CudaOps, RopeSiluAddCopy) {
  Rng rng(7);
  const int64_t M = 6, H = 3, dim = 64, hs = 96, ld = H * hs + 4;
  const std::vector<float> x = rng.vec(size_t(M * ld));
  const std::vector<int32_t> pos = {0, 1, 5, 100, 4095, 77};
  const std::vector<float> inv = rng.vec(dim / 2, 0.001f, 1.0f);
  check_cuda("rope", kExactish, [&](ops::Backend& be, Mem& m) {
    float* y = m.put(x);
    be.rope(ops::RopeParams{y, ld, hs, M, H, dim, m.put(pos), m.put(inv), 1.3f});
    return m.get(y, x.size());
  });
  const int64_t n = 1000;
  const std::vector<float> g = rng.vec(size_t(M * 1003), -8, 8), u = rng.vec(size_t(M * 1001));
  check_cuda("silu_mul", kExactish, [&](ops::Backend& be, Mem& m) {
    float* o = m.put(std::vector<float>(size_t(M * 1002)));
    be.silu_mul(ops::SiluMulParams{m.put(g), 1003, m.put(u), 1001, o, 1002, M, n});
    return m.get(o, size_t(M * 1002));
  });
  check_cuda("add (aliased)", kExactish, [&](ops::Backend& be, Mem& m) {
    float* a = m.put(g);
    be.add(ops::AddParams{a, 1003, m.put(u), 1001, a, 1003, M, n});
    return m.get(a, g.size());
  });
  check_cuda("copy", kExactish, [&](ops::Backend& be, Mem& m) {
    float* d = m.put(std::vector<float>(size_t(M * 1010), 0.5f));
    be.copy(ops::CopyParams{m.put(g), 1003, d, 1010, M, n});
    return m.get(d, size_t(M * 1010));
  });
}

TEST_F(CudaOps, Embed) {
  struct { DType dt; bool scaled; } cases[] = {
      {DType::F32, false}, {DType::BF16, false}, {DType::F16, false}, {DType::F8_E4M3, true}};
  for (auto c : cases) {
    Rng rng(11);
    OwnedWeight t = make_weight(rng, c.dt, 300, 200, c.scaled);
    const std::vector<int32_t> ids = {0, 299, 128, 127, 5};
    check_cuda(std::string("embed ") + std::string(dtype_name(c.dt)), kExactish, [&](ops::Backend& be, Mem& m) {
      float* o = m.put(std::vector<float>(size_t(5 * 210), 0.25f));
      be.embed(ops::EmbedParams{m.w(t.view), m.put(ids), o, 210, 5});
      return m.get(o, size_t(5 * 210));
    });
  }
}

// Routing: ids must equal ref's exactly (ties to the lower index, -inf groups); weights within fp32 rounding.
TEST_F(CudaOps, Route) {
  struct RCase {
    const char* what;
    int64_t E, k, n_group, topk_group;
    ops::Scoring scoring;
    ops::TopkRule rule;
    bool norm, scale_after, bias, ties;
  } cases[] = {
      {"v2-lite greedy softmax", 64, 6, 1, 1, ops::Scoring::Softmax, ops::TopkRule::Greedy, false, false, false, false},
      {"v2 group max", 160, 6, 8, 3, ops::Scoring::Softmax, ops::TopkRule::GroupMax, false, false, false, false},
      {"v3 noaux_tc", 256, 8, 8, 4, ops::Scoring::Sigmoid, ops::TopkRule::GroupTop2Sum, true, true, true, false},
      {"norm without scale", 20, 4, 4, 2, ops::Scoring::Sigmoid, ops::TopkRule::GroupTop2Sum, true, false, true, false},
      {"ties", 24, 5, 4, 2, ops::Scoring::Softmax, ops::TopkRule::GroupMax, true, true, false, true},
      {"k beyond kept groups", 16, 6, 4, 1, ops::Scoring::Sigmoid, ops::TopkRule::GroupTop2Sum, true, true, false, true},
  };
  for (const RCase& c : cases) {
    const int64_t T = 37;
    Rng rng(uint64_t(c.E * 31 + c.k));
    std::vector<float> logits = rng.vec(size_t(T * c.E), -4, 4);
    if (c.ties)
      for (auto& v : logits) v = float(int(v));  // many equal logits: ties decide
    const std::vector<float> bias = rng.vec(size_t(c.E), -0.1f, 0.1f);
    std::vector<int32_t> ids_ref;
    auto run = [&](ops::Backend& be, Mem& m, std::vector<int32_t>* ids_out) {
      ops::RouteParams p;
      p.logits = m.put(logits);
      p.bias = c.bias ? m.put(bias) : nullptr;
      p.ids = m.put(std::vector<int32_t>(size_t(T * c.k), -7));
      p.weights = m.put(std::vector<float>(size_t(T * c.k)));
      p.T = T; p.E = c.E; p.k = c.k; p.n_group = c.n_group; p.topk_group = c.topk_group;
      p.scoring = c.scoring; p.rule = c.rule; p.norm_topk_prob = c.norm; p.scale_after_norm = c.scale_after;
      p.routed_scaling_factor = 2.5f;
      be.route(p);
      *ids_out = m.get(p.ids, size_t(T * c.k));
      return m.get(p.weights, size_t(T * c.k));
    };
    std::vector<int32_t> ids_cuda;
    check_cuda(std::string("route ") + c.what, kExactish, [&](ops::Backend& be, Mem& m) {
      return run(be, m, be.name() == "ref" ? &ids_ref : &ids_cuda);
    });
    EXPECT_EQ(ids_cuda, ids_ref) << "route " << c.what << ": selected experts differ from ref";
  }
}

TEST_F(CudaOps, Moe) {
  struct { DType dt; bool scaled; ops::Precision prec; } cases[] = {
      {DType::BF16, false, ops::Precision::F32}, {DType::F8_E4M3, true, ops::Precision::F32},
      {DType::BF16, false, ops::Precision::Fast}, {DType::F8_E4M3, true, ops::Precision::Fast}};
  for (auto c : cases)
    for (int64_t T : {1, 5, 40}) {  // T = 40: 120 pairs over 8 experts, several row tiles for some
      Rng rng(uint64_t(T) * 31 + int(c.dt));
      const int64_t E = 8, k = 3, D = 200, inter = 144;
      std::vector<OwnedWeight> ws;
      for (int64_t e = 0; e < E; ++e) {
        ws.push_back(make_weight(rng, c.dt, inter, D, c.scaled));
        ws.push_back(make_weight(rng, c.dt, inter, D, c.scaled));
        ws.push_back(make_weight(rng, c.dt, D, inter, c.scaled));
      }
      std::vector<int32_t> ids(size_t(T * k));
      for (int64_t t = 0; t < T; ++t)
        for (int64_t j = 0; j < k; ++j) ids[t * k + j] = int32_t((t * 5 + j * 3 + (t % 3)) % E);
      const std::vector<float> wts = rng.vec(size_t(T * k), 0.1f, 1.0f);
      const float xs = c.scaled ? 40.0f : 1.0f;
      const std::vector<float> x = rng.vec(size_t(T * (D + 1)), -xs, xs), y0 = rng.vec(size_t(T * D));
      const std::string what = std::string("moe ") + std::string(dtype_name(c.dt)) + " T" + std::to_string(T) +
                               (c.prec == ops::Precision::Fast ? " fast" : "");
      check_cuda(what, c.prec == ops::Precision::Fast ? kFast : kF32, [&](ops::Backend& be, Mem& m) {
        std::vector<ops::ExpertWeights> ex(E);
        for (int64_t e = 0; e < E; ++e)
          ex[e] = {m.w(ws[3 * e].view), m.w(ws[3 * e + 1].view), m.w(ws[3 * e + 2].view)};
        ops::MoeParams p;
        p.x = m.put(x); p.ldx = D + 1; p.ids = m.put(ids); p.weights = m.put(wts); p.experts = ex.data();
        p.y = m.put(y0); p.ldy = D; p.T = T; p.D = D; p.k = k; p.E = E; p.inter = inter; p.precision = c.prec;
        be.moe(p);
        be.moe(p);  // twice: the second call reuses the cached expert table; the contribution doubles
        std::vector<float> y = m.get(p.y, y0.size());
        for (size_t i = 0; i < y.size(); ++i) y[i] -= y0[i];
        return y;
      });
    }
}

TEST_F(CudaOps, MlaDecode) {
  for (int64_t H : {4, 20})  // 20 heads of rank 512: more than one head group per query
    for (int64_t T : {1, 3})
      for (int64_t S : {1, 37, 300}) {
        Rng rng(uint64_t(T * 100 + S + H));
        const int64_t rank = H == 4 ? 96 : 512, rope = H == 4 ? 16 : 64;
        const int64_t ldq = H * (rank + rope) + 2, ldkv = rank + rope + 5;
        const std::vector<float> q = rng.vec(size_t(T * ldq)), kv = rng.vec(size_t(S * ldkv));
        check_cuda("mla_decode H" + std::to_string(H) + " T" + std::to_string(T) + " S" + std::to_string(S), kF32,
                   [&](ops::Backend& be, Mem& m) {
                     float* o = m.put(std::vector<float>(size_t(T * H * rank)));
                     ops::MlaDecodeParams p;
                     p.q = m.put(q); p.ldq = ldq; p.kv = m.put(kv); p.ldkv = ldkv; p.out = o; p.ldo = H * rank;
                     p.T = T; p.S = S; p.H = H; p.rank = rank; p.rope = rope;
                     p.pos0 = std::max<int64_t>(S - T, 0); p.scale = 0.2f / (H == 4 ? 1.0f : 3.0f);
                     be.mla_decode(p);
                     return m.get(o, size_t(T * H * rank));
                   });
      }
}

// A paged cache: rows over shuffled blocks of odd sizes inside a pool with several layers. Against ref, and bitwise
// equal to the contiguous layout on the GPU (the per-key arithmetic must not depend on the layout).
TEST_F(CudaOps, MlaDecodePaged) {
  for (int64_t bs : {1, 3, 16})
    for (int64_t T : {1, 3})
      for (int64_t S : {1, 37, 300}) {
        Rng rng(uint64_t(bs * 10000 + T * 1000 + S));
        const int64_t H = 4, rank = 96, rope = 16, ldq = H * (rank + rope) + 2, ldkv = rank + rope + 5;
        const int64_t n_layers = 3, layer = 1, nb = (S + bs - 1) / bs, pool_blocks = nb + 4;
        const int64_t stride = n_layers * bs * ldkv;
        const std::vector<float> q = rng.vec(size_t(T * ldq)), kv = rng.vec(size_t(S * ldkv));
        std::vector<float> pool = rng.vec(size_t(pool_blocks * stride));  // other layers / unused rows: noise
        std::vector<int32_t> table(static_cast<size_t>(pool_blocks));
        std::iota(table.begin(), table.end(), 0);
        std::shuffle(table.begin(), table.end(), rng.g);
        table.resize(size_t(nb));
        for (int64_t t = 0; t < S; ++t)
          std::copy_n(&kv[size_t(t * ldkv)], ldkv,
                      &pool[size_t(table[size_t(t / bs)] * stride + layer * bs * ldkv + (t % bs) * ldkv)]);
        auto run = [&](ops::Backend& be, Mem& m, bool paged) {
          float* o = m.put(std::vector<float>(size_t(T * H * rank)));
          ops::MlaDecodeParams p;
          p.q = m.put(q); p.ldq = ldq; p.out = o; p.ldo = H * rank; p.ldkv = ldkv;
          if (paged) {
            p.kv = m.put(pool) + layer * bs * ldkv;
            p.block_table = m.put(table); p.block_size = bs; p.block_stride = stride;
          } else {
            p.kv = m.put(kv);
          }
          p.T = T; p.S = S; p.H = H; p.rank = rank; p.rope = rope; p.pos0 = std::max<int64_t>(S - T, 0);
          p.scale = 0.2f;
          be.mla_decode(p);
          return m.get(o, size_t(T * H * rank));
        };
        const std::string tag = "mla_decode paged bs" + std::to_string(bs) + " T" + std::to_string(T) + " S" +
                                std::to_string(S);
        check_cuda(tag, kF32, [&](ops::Backend& be, Mem& m) { return run(be, m, true); });
        auto cu = cuda::make_cuda_backend(0);
        Mem m{*cu, {}};
        const auto a = run(*cu, m, true), b = run(*cu, m, false);
        EXPECT_EQ(0, std::memcmp(a.data(), b.data(), a.size() * 4)) << tag << ": paged differs from contiguous";
      }
}

TEST_F(CudaOps, MlaPrefill) {
  for (int64_t T : {1, 9, 40}) {  // 40: three query blocks, several key tiles
    Rng rng{uint64_t(T)};
    const int64_t H = 3, nope = 40, rope = 8, dv = 33, S = T + 5, pos0 = 5;
    const int64_t ldq = H * (nope + rope), ldk = H * 48, ldv = H * 40 + 1;
    const std::vector<float> q = rng.vec(size_t(T * ldq)), k = rng.vec(size_t(S * ldk));
    const std::vector<float> kpe = rng.vec(size_t(S * 10)), v = rng.vec(size_t(S * ldv));
    check_cuda("mla_prefill T" + std::to_string(T), kF32, [&](ops::Backend& be, Mem& m) {
      float* o = m.put(std::vector<float>(size_t(T * H * dv)));
      ops::MlaPrefillParams p;
      p.q = m.put(q); p.ldq = ldq; p.k_nope = m.put(k); p.ldk = ldk; p.hsk = 48; p.k_pe = m.put(kpe); p.ldkpe = 10;
      p.v = m.put(v); p.ldv = ldv; p.hsv = 40; p.out = o; p.ldo = H * dv;
      p.T = T; p.S = S; p.H = H; p.nope = nope; p.rope = rope; p.dv = dv; p.pos0 = pos0; p.scale = 0.15f;
      be.mla_prefill(p);
      return m.get(o, size_t(T * H * dv));
    });
  }
}

}  // namespace
}  // namespace ds::test
