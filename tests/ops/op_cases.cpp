// SPDX-License-Identifier: MIT
#include "ops/op_cases.h"

#include <algorithm>
#include <cstring>
#include <numeric>

namespace ds::test {

namespace {
std::string mm_name(const MmCase& c) {
  return std::string(dtype_name(c.dt)) + (c.scaled ? "+scale" : "") + " M" + std::to_string(c.M) + " N" +
         std::to_string(c.N) + " K" + std::to_string(c.K) + (c.accumulate ? " acc" : "") + (c.w_kn ? " kn" : "") +
         (c.prec == ops::Precision::Fast ? " fast" : "") + (c.slice0 ? " row0=" + std::to_string(c.slice0) : "");
}
}  // namespace

void matmul_case(const MmCase& c, const Runner& run) {
  Rng rng(uint64_t(c.M * 1000003 + c.N * 1009 + c.K * 7 + int(c.dt)));
  const int64_t wr = c.w_kn ? c.K : c.N, wc = c.w_kn ? c.N : c.K;
  OwnedWeight w = make_weight(rng, c.dt, wr + c.slice0, wc, c.scaled);
  const int64_t ldx = c.K + 3, ldy = c.N + 5;  // strided rows
  const std::vector<float> x = rng.vec(size_t(c.M * ldx)), y0 = rng.vec(size_t(c.M * ldy));
  run(mm_name(c), kF32, [&](ops::Backend& be, Mem& mem) {
    // The parent is prepared (uploaded) whole, then sliced: the way the model slices kv_b_proj per head. A weight
    // used whole and untransposed is prepared as the model prepares projections (MatmulOnly).
    const WeightView parent = c.slice0 || c.w_kn ? mem.w(w.view) : mem.wm(w.view);
    ops::MatmulParams p;
    p.x = mem.put(x); p.ldx = ldx; p.w = c.slice0 ? parent.row_slice(c.slice0, wr) : parent; p.w_kn = c.w_kn;
    p.y = mem.put(y0); p.ldy = ldy;
    p.M = c.M; p.N = c.N; p.K = c.K; p.accumulate = c.accumulate; p.precision = c.prec;
    be.matmul(p);
    const std::vector<float> y = mem.get(p.y, y0.size());
    // Compare only the [M, N] block; the padding columns must be untouched.
    std::vector<float> out;
    for (int64_t m = 0; m < c.M; ++m) {
      for (int64_t n = 0; n < c.N; ++n) out.push_back(y[m * ldy + n]);
      for (int64_t n = c.N; n < ldy; ++n) EXPECT_EQ(y[m * ldy + n], y0[m * ldy + n]) << "wrote past N";
    }
    return out;
  });
}

void rms_norm_cases(const Runner& run) {
  for (DType dt : {DType::F32, DType::BF16})
    for (int64_t n : {7, 64, 2049}) {
      Rng rng{uint64_t(n)};
      OwnedWeight w = make_weight(rng, dt, 1, n);
      const int64_t M = 5, ld = n + 3;
      const std::vector<float> x = rng.vec(size_t(M * ld));
      run("rms_norm n" + std::to_string(n), kExactish, [&](ops::Backend& be, Mem& m) {
        float* y = m.put(x);  // in place
        be.rms_norm(ops::RmsNormParams{y, ld, m.w(w.view), y, ld, M, n, 1e-6f});
        return m.get(y, x.size());
      });
    }
}

void rope_silu_add_copy_cases(const Runner& run) {
  Rng rng(7);
  const int64_t M = 6, H = 3, dim = 64, hs = 96, ld = H * hs + 4;
  const std::vector<float> x = rng.vec(size_t(M * ld));
  const std::vector<int32_t> pos = {0, 1, 5, 100, 4095, 77};
  const std::vector<float> inv = rng.vec(dim / 2, 0.001f, 1.0f);
  run("rope", kExactish, [&](ops::Backend& be, Mem& m) {
    float* y = m.put(x);
    be.rope(ops::RopeParams{y, ld, hs, M, H, dim, m.put(pos), m.put(inv), 1.3f});
    return m.get(y, x.size());
  });
  const int64_t n = 1000;
  const std::vector<float> g = rng.vec(size_t(M * 1003), -8, 8), u = rng.vec(size_t(M * 1001));
  run("silu_mul", kExactish, [&](ops::Backend& be, Mem& m) {
    float* o = m.put(std::vector<float>(size_t(M * 1002)));
    be.silu_mul(ops::SiluMulParams{m.put(g), 1003, m.put(u), 1001, o, 1002, M, n});
    return m.get(o, size_t(M * 1002));
  });
  run("add (aliased)", kExactish, [&](ops::Backend& be, Mem& m) {
    float* a = m.put(g);
    be.add(ops::AddParams{a, 1003, m.put(u), 1001, a, 1003, M, n});
    return m.get(a, g.size());
  });
  run("copy", kExactish, [&](ops::Backend& be, Mem& m) {
    float* d = m.put(std::vector<float>(size_t(M * 1010), 0.5f));
    be.copy(ops::CopyParams{m.put(g), 1003, d, 1010, M, n});
    return m.get(d, size_t(M * 1010));
  });
}

void embed_cases(const Runner& run) {
  const DtCase cases[] = {{DType::F32, false}, {DType::BF16, false}, {DType::F16, false}, {DType::F8_E4M3, true}};
  for (const DtCase& c : cases) {
    Rng rng(11);
    OwnedWeight t = make_weight(rng, c.dt, 300, 200, c.scaled);
    const std::vector<int32_t> ids = {0, 299, 128, 127, 5};
    run(std::string("embed ") + std::string(dtype_name(c.dt)), kExactish, [&](ops::Backend& be, Mem& m) {
      float* o = m.put(std::vector<float>(size_t(5 * 210), 0.25f));
      be.embed(ops::EmbedParams{m.w(t.view), m.put(ids), o, 210, 5});
      return m.get(o, size_t(5 * 210));
    });
  }
}

void route_cases(const Runner& run) {
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
    std::vector<int32_t> ids_ref;  // runners run ref first
    run(std::string("route ") + c.what, kExactish, [&](ops::Backend& be, Mem& m) {
      ops::RouteParams p;
      p.logits = m.put(logits);
      p.bias = c.bias ? m.put(bias) : nullptr;
      p.ids = m.put(std::vector<int32_t>(size_t(T * c.k), -7));
      p.weights = m.put(std::vector<float>(size_t(T * c.k)));
      p.T = T; p.E = c.E; p.k = c.k; p.n_group = c.n_group; p.topk_group = c.topk_group;
      p.scoring = c.scoring; p.rule = c.rule; p.norm_topk_prob = c.norm; p.scale_after_norm = c.scale_after;
      p.routed_scaling_factor = 2.5f;
      be.route(p);
      const std::vector<int32_t> ids = m.get(p.ids, size_t(T * c.k));
      if (be.name() == "ref") ids_ref = ids;
      else EXPECT_EQ(ids, ids_ref) << "route " << c.what << " [" << be.name() << "]: selected experts differ from ref";
      return m.get(p.weights, size_t(T * c.k));
    });
  }
}

void moe_cases(const Runner& run) {
  struct { DType dt; bool scaled; ops::Precision prec; } cases[] = {
      {DType::BF16, false, ops::Precision::F32}, {DType::F8_E4M3, true, ops::Precision::F32},
      {DType::BF16, false, ops::Precision::Fast}, {DType::F8_E4M3, true, ops::Precision::Fast}};
  for (auto c : cases)
    for (int64_t T : {1, 5, 40}) {  // T = 40: 120 pairs over 8 experts (the prefill path; several row tiles)
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
        for (int64_t j = 0; j < k; ++j) ids[t * k + j] = int32_t((t * 5 + j * 3 + (t % 3)) % E);  // distinct per t
      const std::vector<float> wts = rng.vec(size_t(T * k), 0.1f, 1.0f);
      const float xs = c.scaled ? 40.0f : 1.0f;  // FP8 weights are small once scaled: keep outputs O(1)
      const std::vector<float> x = rng.vec(size_t(T * (D + 1)), -xs, xs), y0 = rng.vec(size_t(T * D));
      const std::string what = std::string("moe ") + std::string(dtype_name(c.dt)) + " T" + std::to_string(T) +
                               (c.prec == ops::Precision::Fast ? " fast" : "");
      run(what, c.prec == ops::Precision::Fast ? kFastMoe : kF32, [&](ops::Backend& be, Mem& m) {
        std::vector<ops::ExpertWeights> ex(E);
        for (int64_t e = 0; e < E; ++e)
          ex[e] = {m.wm(ws[3 * e].view), m.wm(ws[3 * e + 1].view), m.wm(ws[3 * e + 2].view)};
        ops::MoeParams p;
        p.x = m.put(x); p.ldx = D + 1; p.ids = m.put(ids); p.weights = m.put(wts); p.experts = ex.data();
        p.y = m.put(y0); p.ldy = D; p.T = T; p.D = D; p.k = k; p.E = E; p.inter = inter; p.precision = c.prec;
        be.moe(p);
        be.moe(p);  // twice: a second call may reuse cached state (CUDA's expert table); the contribution doubles
        std::vector<float> y = m.get(p.y, y0.size());
        for (size_t i = 0; i < y.size(); ++i) y[i] -= y0[i];  // compare the MoE contribution itself
        return y;
      });
    }
}

void mla_decode_cases(const Runner& run) {
  for (int64_t H : {4, 20})  // 20 heads of rank 512: more than one head group per query on the GPU
    for (int64_t T : {1, 3})
      for (int64_t S : {1, 37, 300}) {
        Rng rng(uint64_t(T * 100 + S + H));
        const int64_t rank = H == 4 ? 96 : 512, rope = H == 4 ? 16 : 64;
        const int64_t ldq = H * (rank + rope) + 2, ldkv = rank + rope + 5;
        const std::vector<float> q = rng.vec(size_t(T * ldq)), kv = rng.vec(size_t(S * ldkv));
        run("mla_decode H" + std::to_string(H) + " T" + std::to_string(T) + " S" + std::to_string(S), kF32,
            [&](ops::Backend& be, Mem& m) {
              float* o = m.put(std::vector<float>(size_t(T * H * rank)));
              ops::MlaDecodeParams p;
              p.q = m.put(q); p.ldq = ldq; p.kv = m.put(kv); p.ldkv = ldkv; p.out = o; p.ldo = H * rank;
              p.T = T; p.S = S; p.H = H; p.rank = rank; p.rope = rope;
              p.pos0 = std::max<int64_t>(S - T, 0);  // queries are the last T positions
              p.scale = 0.2f / (H == 4 ? 1.0f : 3.0f);
              be.mla_decode(p);
              return m.get(o, size_t(T * H * rank));
            });
      }
}

void mla_decode_paged_cases(const Runner& run, const MakeBackend& make) {
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
        std::iota(table.begin(), table.end(), 0);
        std::shuffle(table.begin(), table.end(), rng.g);
        table.resize(size_t(nb));
        for (int64_t t = 0; t < S; ++t)
          std::copy_n(&kv[size_t(t * ldkv)], ldkv,
                      &pool[size_t(table[size_t(t / bs)] * stride + layer * bs * ldkv + (t % bs) * ldkv)]);
        auto attend = [&](ops::Backend& be, Mem& m, bool paged) {
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
        run(tag, kF32, [&](ops::Backend& be, Mem& m) { return attend(be, m, true); });
        auto be = make();
        const auto a = run_on(*be, [&](ops::Backend& b, Mem& m) { return attend(b, m, true); });
        const auto b = run_on(*be, [&](ops::Backend& b2, Mem& m) { return attend(b2, m, false); });
        EXPECT_EQ(0, std::memcmp(a.data(), b.data(), a.size() * 4)) << tag << " [" << be->name()
                                                                     << "]: paged differs from contiguous";
      }
}

void mla_prefill_cases(const Runner& run) {
  for (int64_t T : {1, 9, 40}) {  // 40: several query blocks and key tiles on the GPU
    Rng rng{uint64_t(T)};
    const int64_t H = 3, nope = 40, rope = 8, dv = 33, S = T + 5, pos0 = 5;
    const int64_t ldq = H * (nope + rope), ldk = H * 48, ldv = H * 40 + 1;
    const std::vector<float> q = rng.vec(size_t(T * ldq)), k = rng.vec(size_t(S * ldk));
    const std::vector<float> kpe = rng.vec(size_t(S * 10)), v = rng.vec(size_t(S * ldv));
    run("mla_prefill T" + std::to_string(T), kF32, [&](ops::Backend& be, Mem& m) {
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

}  // namespace ds::test
