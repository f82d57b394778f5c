// SPDX-License-Identifier: MIT
#include "ops/op_cases.h"

#include <algorithm>
#include <cstring>
#include <numeric>

#include "base/kv_rows.h"

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
  // Half-split pairs (x[j], x[j + dim/2]), partial (dim 64 of a 96-float head) and full rotary (dim 96): against ref,
  // and on every backend bitwise the interleaved rope of the permuted head (interleaved 2j <-> j, 2j+1 <-> j + dim/2).
  for (int64_t d : {int64_t(64), hs}) {
    const std::vector<float> invd = rng.vec(size_t(d / 2), 0.001f, 1.0f);
    auto permuted = [&](const std::vector<float>& v, bool to_half) {  // interleaved layout <-> half-split layout
      std::vector<float> w = v;
      for (int64_t mh = 0; mh < M * H; ++mh) {
        const int64_t base = (mh / H) * ld + (mh % H) * hs;
        for (int64_t j = 0; j < d / 2; ++j) {
          const size_t il = size_t(base + 2 * j), hf = size_t(base + j);
          if (to_half) { w[hf] = v[il]; w[hf + size_t(d / 2)] = v[il + 1]; }
          else { w[il] = v[hf]; w[il + 1] = v[hf + size_t(d / 2)]; }
        }
      }
      return w;
    };
    const std::vector<float> xh = permuted(x, true);
    run("rope half dim" + std::to_string(d), kExactish, [&](ops::Backend& be, Mem& m) {
      float* y = m.put(xh);
      be.rope(ops::RopeParams{y, ld, hs, M, H, d, m.put(pos), m.put(invd), 1.3f, true});
      float* z = m.put(x);
      be.rope(ops::RopeParams{z, ld, hs, M, H, d, m.put(pos), m.put(invd), 1.3f, false});
      const std::vector<float> half = m.get(y, x.size()), inter = m.get(z, x.size());
      EXPECT_EQ(0, std::memcmp(permuted(half, false).data(), inter.data(), inter.size() * 4))
          << "rope half dim" << d << " [" << be.name() << "]: differs from interleaved rope on the permuted input";
      return half;
    });
  }
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

namespace {
std::string kv_tag(DType dt) { return dt == DType::F32 ? "" : std::string(" ") + kv_dtype_name(dt); }

// Bytes from one cache row to the next in the cases: more than a row needs (strided rows), a multiple of 4.
int64_t kv_stride(DType dt, int64_t width) {
  return dt == DType::F32 ? 4 * (width + 5) : kv_row_bytes(dt, width) + 12;
}

// rows [n, width] (row stride ldx) in format dt, row_bytes apart (the padding bytes 0xA5, never read).
std::vector<uint8_t> encode_rows(DType dt, const float* x, int64_t ldx, int64_t n, int64_t width, int64_t row_bytes) {
  std::vector<uint8_t> b(size_t(std::max<int64_t>(n, 1) * row_bytes), 0xA5);
  for (int64_t t = 0; t < n; ++t) kv_encode_row(dt, x + t * ldx, width, &b[size_t(t * row_bytes)]);
  return b;
}

// The stored rows' fp32 values [n, ldx] (padding columns as in x).
std::vector<float> decode_rows(DType dt, const std::vector<float>& x, int64_t ldx, int64_t n, int64_t width) {
  std::vector<float> d(x);
  std::vector<uint8_t> row(size_t(kv_row_bytes(dt, width)));
  for (int64_t t = 0; t < n; ++t) {
    kv_encode_row(dt, &x[size_t(t * ldx)], width, row.data());
    kv_decode_row(dt, row.data(), width, 0, width, &d[size_t(t * ldx)]);
  }
  return d;
}

// A cache of S rows [S, width] (row stride ldx in x) as ops read it: contiguous, and on shuffled blocks of bs rows in
// a pool of 3 layers (the op reads layer 1; other layers and unused rows hold other encoded rows), as
// model/kv_pool.h lays them out.
struct KvLayouts {
  DType dt = DType::F32;
  int64_t width = 0, row_bytes = 0, bs = 0, block_bytes = 0;
  std::vector<uint8_t> contiguous, pool;
  std::vector<int32_t> table;
  static constexpr int64_t kLayers = 3, kLayer = 1;

  KvLayouts(Rng& rng, DType t, const std::vector<float>& x, int64_t ldx, int64_t S, int64_t w, int64_t block)
      : dt(t), width(w), row_bytes(kv_stride(t, w)), bs(block) {
    contiguous = encode_rows(dt, x.data(), ldx, S, width, row_bytes);
    if (bs <= 0) return;
    const int64_t nb = (S + bs - 1) / bs, pool_blocks = nb + 4;
    block_bytes = kLayers * bs * row_bytes;
    const std::vector<float> noise = rng.vec(size_t(pool_blocks * kLayers * bs * width));
    pool = encode_rows(dt, noise.data(), width, pool_blocks * kLayers * bs, width, row_bytes);
    table.resize(size_t(pool_blocks));
    std::iota(table.begin(), table.end(), 0);
    std::shuffle(table.begin(), table.end(), rng.g);
    table.resize(size_t(std::max<int64_t>(nb, 1)));
    for (int64_t t = 0; t < S; ++t)
      std::copy_n(&contiguous[size_t(t * row_bytes)], row_bytes,
                  &pool[size_t(table[size_t(t / bs)] * block_bytes + kLayer * bs * row_bytes + (t % bs) * row_bytes)]);
  }
  // The rows in backend memory, paged or contiguous.
  ops::KvRows put(Mem& m, bool paged) const {
    ops::KvRows r;
    r.dtype = dt; r.width = width; r.row_bytes = row_bytes;
    if (paged) {
      r.base = m.put(pool) + kLayer * bs * row_bytes;
      r.block_table = m.put(table); r.block_size = bs; r.block_bytes = block_bytes;
    } else {
      r.base = m.put(contiguous);
    }
    return r;
  }
};
}  // namespace

void mla_decode_cases(const Runner& run, DType dt) {
  for (int64_t H : {4, 20})  // 20 heads of rank 512: more than one head group per query on the GPU
    for (int64_t T : {1, 3})
      for (int64_t S : {1, 37, 300}) {
        Rng rng(uint64_t(T * 100 + S + H));
        const int64_t rank = H == 4 ? 96 : 512, rope = H == 4 ? 16 : 64, w = rank + rope;
        const int64_t ldq = H * (rank + rope) + 2, ldkv = rank + rope + 5;
        const std::vector<float> q = rng.vec(size_t(T * ldq)), kv = rng.vec(size_t(S * ldkv));
        const KvLayouts cache(rng, dt, kv, ldkv, S, w, 0);
        run("mla_decode H" + std::to_string(H) + " T" + std::to_string(T) + " S" + std::to_string(S) + kv_tag(dt), kF32,
            [&](ops::Backend& be, Mem& m) {
              float* o = m.put(std::vector<float>(size_t(T * H * rank)));
              ops::MlaDecodeParams p;
              p.q = m.put(q); p.ldq = ldq; p.kv = cache.put(m, false); p.out = o; p.ldo = H * rank;
              p.T = T; p.S = S; p.H = H; p.rank = rank; p.rope = rope;
              p.pos0 = std::max<int64_t>(S - T, 0);  // queries are the last T positions
              p.scale = 0.2f / (H == 4 ? 1.0f : 3.0f);
              be.mla_decode(p);
              return m.get(o, size_t(T * H * rank));
            });
      }
}

void mla_decode_paged_cases(const Runner& run, const MakeBackend& make, DType dt) {
  for (int64_t bs : {1, 3, 7, 16})
    for (int64_t T : {1, 3})
      for (int64_t S : {1, 5, 37, 300}) {
        Rng rng(uint64_t(bs * 10000 + T * 1000 + S));
        const int64_t H = 4, rank = 96, rope = 16, ldq = H * (rank + rope) + 2, ldkv = rank + rope + 5;
        const std::vector<float> q = rng.vec(size_t(T * ldq)), kv = rng.vec(size_t(S * ldkv));
        const KvLayouts cache(rng, dt, kv, ldkv, S, rank + rope, bs);
        auto attend = [&](ops::Backend& be, Mem& m, bool paged) {
          float* o = m.put(std::vector<float>(size_t(T * H * rank)));
          ops::MlaDecodeParams p;
          p.q = m.put(q); p.ldq = ldq; p.out = o; p.ldo = H * rank; p.kv = cache.put(m, paged);
          p.T = T; p.S = S; p.H = H; p.rank = rank; p.rope = rope; p.pos0 = std::max<int64_t>(S - T, 0);
          p.scale = 0.2f;
          be.mla_decode(p);
          return m.get(o, size_t(T * H * rank));
        };
        const std::string tag = "mla_decode paged bs" + std::to_string(bs) + " T" + std::to_string(T) + " S" +
                                std::to_string(S) + kv_tag(dt);
        run(tag, kF32, [&](ops::Backend& be, Mem& m) { return attend(be, m, true); });
        auto be = make();
        const auto a = run_on(*be, [&](ops::Backend& b, Mem& m) { return attend(b, m, true); });
        const auto b = run_on(*be, [&](ops::Backend& b2, Mem& m) { return attend(b2, m, false); });
        EXPECT_EQ(0, std::memcmp(a.data(), b.data(), a.size() * 4)) << tag << " [" << be->name()
                                                                     << "]: paged differs from contiguous";
        if (dt == DType::F32) continue;
        // bf16 / fp8 rows compute as their fp32 values: bitwise the f32 cache holding those values.
        const std::vector<float> vals = decode_rows(dt, kv, ldkv, S, rank + rope);
        const KvLayouts f32(rng, DType::F32, vals, ldkv, S, rank + rope, bs);
        const auto c = run_on(*be, [&](ops::Backend& b2, Mem& m) {
          float* o = m.put(std::vector<float>(size_t(T * H * rank)));
          ops::MlaDecodeParams p;
          p.q = m.put(q); p.ldq = ldq; p.out = o; p.ldo = H * rank; p.kv = f32.put(m, true);
          p.T = T; p.S = S; p.H = H; p.rank = rank; p.rope = rope; p.pos0 = std::max<int64_t>(S - T, 0);
          p.scale = 0.2f;
          b2.mla_decode(p);
          return m.get(o, size_t(T * H * rank));
        });
        EXPECT_EQ(0, std::memcmp(a.data(), c.data(), a.size() * 4)) << tag << " [" << be->name()
                                                                     << "]: differs from f32 rows of the same values";
      }
}

void kv_write_read_cases(const Runner& run, DType dt) {
  for (int64_t width : {576, 112, 200, 7})  // MLA's row; GQA-like; a partial fp8 tile; odd (padded) rows
    for (int64_t bs : {16, 5}) {
      Rng rng(uint64_t(width * 31 + bs + int(dt)));
      const int64_t S = 45, ldx = width + 3;
      std::vector<float> x = rng.vec(size_t(S * ldx), -3.0f, 3.0f);
      for (int64_t c = 0; c < width; c += 3) x[size_t(5 * ldx + c)] *= 1e-3f;  // a row of mixed magnitudes
      std::fill_n(&x[size_t(6 * ldx)], width, 0.0f);                         // an all-zero row (fp8 scale 0)
      const KvLayouts empty(rng, dt, std::vector<float>(size_t(S * width)), width, S, width, bs);
      const std::vector<uint8_t> want_bytes = encode_rows(dt, x.data(), ldx, S, width, empty.row_bytes);
      const std::string tag = "kv_write/kv_read width " + std::to_string(width) + " bs" + std::to_string(bs) +
                              " " + kv_dtype_name(dt);
      run(tag, Budget{0.0, 0.0}, [&](ops::Backend& be, Mem& m) {
        const ops::KvRows kv = empty.put(m, true);
        // Rows written in three chunks (a decode-sized one inside a block, one across blocks), read back whole.
        for (auto [p0, n] : {std::pair<int64_t, int64_t>{0, 1}, {1, 20}, {21, S - 21}})
          be.kv_write({m.put(x) + p0 * ldx, ldx, kv, p0, n});
        const std::vector<float> o0(size_t(S * (width + 2)), 0.75f);
        float* out = m.put(o0);
        be.kv_read({kv, 0, S, out, width + 2});
        // The stored bytes are base/kv_rows.h's encoding of each row.
        for (int64_t t = 0; t < S; ++t) {
          std::vector<uint8_t> got(size_t(empty.row_bytes));
          const int64_t off = empty.table[size_t(t / bs)] * empty.block_bytes + (t % bs) * empty.row_bytes;
          be.download(got.data(), kv.base + off, size_t(kv_row_bytes(dt, width)));
          EXPECT_EQ(0, std::memcmp(got.data(), &want_bytes[size_t(t * empty.row_bytes)],
                                   size_t(kv_row_bytes(dt, width))))
              << tag << " [" << be.name() << "]: row " << t << " stored differently";
        }
        std::vector<float> o = m.get(out, o0.size());
        std::vector<float> res;
        for (int64_t t = 0; t < S; ++t) {
          res.insert(res.end(), o.begin() + t * (width + 2), o.begin() + t * (width + 2) + width);
          EXPECT_EQ(o[size_t(t * (width + 2) + width)], 0.75f) << tag << " [" << be.name() << "]: wrote past width";
        }
        // A part of the cache read into the middle of a buffer.
        be.kv_read({kv, 17, 3, out, width});
        const std::vector<float> part = m.get(out, size_t(3 * width));
        for (int64_t i = 0; i < 3 * width; ++i) EXPECT_EQ(part[size_t(i)], res[size_t(17 * width + i)]) << tag;
        return res;
      });
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

void sparse_attention_cases(const Runner& run, const MakeBackend& make, DType dt) {
  {
    Rng rng(11);
    const int64_t M = 5, n = 128, ld = 131;
    OwnedWeight w = make_weight(rng, DType::F32, 1, n), b = make_weight(rng, DType::F32, 1, n);
    std::vector<float> x = rng.vec(size_t(M * ld), -2.0f, 3.0f);
    run("layer_norm n128", kExactish, [&](ops::Backend& be, Mem& m) {
      float* y = m.put(x);  // in place
      be.layer_norm(ops::LayerNormParams{y, ld, m.w(w.view), m.w(b.view), y, ld, M, n, 1e-6f});
      return m.get(y, x.size());
    });
  }
  // The indexer: rows of 100 values with the key at [60, 92); T queries at the last positions of S.
  const int64_t width = 100, koff = 60, d = 32, nh = 3;
  for (int64_t S : {40, 700})
    for (int64_t T : {1, 5})
      for (int variant : {0, 1, 2}) {  // random keys; pairs of equal keys (exact ties); every key equal
        Rng rng(uint64_t(S * 10 + T + variant * 1000));
        std::vector<float> kv = rng.vec(size_t(S * width));
        for (int64_t t = 0; t < S; ++t)
          if ((variant == 1 && t % 2 == 1) || (variant == 2 && t > 0))
            std::copy_n(&kv[size_t((variant == 1 ? t - 1 : 0) * width)], width, &kv[size_t(t * width)]);  // whole rows:
                                                                                                     // equal as stored
        const int64_t topk = 16, pos0 = S - T, ldq = nh * d + 3;
        const std::vector<float> q = rng.vec(size_t(T * ldq)), w = rng.vec(size_t(T * nh), -0.5f, 1.0f);
        const KvLayouts cache(rng, dt, kv, width, S, width, 7);
        const std::string tag = "indexer S" + std::to_string(S) + " T" + std::to_string(T) + " keys " +
                                (variant == 0 ? "random" : variant == 1 ? "paired" : "equal") + kv_tag(dt);
        auto select = [&](ops::Backend& be, Mem& m) {
          int32_t* sel = m.put(std::vector<int32_t>(size_t(T * (topk + 1)), 7));
          ops::IndexerParams p;
          p.q = m.put(q); p.ldq = ldq; p.w = m.put(w); p.ldw = nh; p.kv = cache.put(m, true); p.key_off = koff;
          p.T = T; p.S = S; p.nh = nh; p.d = d; p.topk = topk; p.pos0 = pos0; p.scale = 0.3f;
          p.sel = sel; p.ldsel = topk + 1;
          be.indexer(p);
          const std::vector<int32_t> got = m.get(sel, size_t(T * (topk + 1)));
          return std::vector<float>(got.begin(), got.end());
        };
        run(tag, Budget{0.0, 0.0}, select);
        auto be = make();
        const std::vector<float> got = run_on(*be, select);
        for (int64_t i = 0; i < T; ++i) {
          EXPECT_EQ(got[size_t(i * (topk + 1) + topk)], 7.0f) << tag << ": wrote past topk";
          if (variant == 2)  // every score equal: the lowest positions win
            for (int64_t j = 0; j < topk; ++j) EXPECT_EQ(got[size_t(i * (topk + 1) + j)], float(j)) << tag;
        }
      }
  // Both MLA forms over selected positions: random ascending lists (some shorter, -1 ended); and every earlier
  // position, which must be bitwise the dense result.
  const int64_t H = 3, rank = 64, rope = 16, S = 90, T = 4, pos0 = S - T, n_sel = 20, ldkv = rank + rope + 7;
  Rng rng(21);
  const std::vector<float> kv = rng.vec(size_t(S * ldkv));
  const KvLayouts cache(rng, dt, kv, ldkv, S, rank + rope + 7, 16);
  std::vector<int32_t> sel(size_t(T * n_sel), -1);
  for (int64_t i = 0; i < T; ++i) {
    std::vector<int32_t> all(size_t(pos0 + i + 1));
    std::iota(all.begin(), all.end(), 0);
    std::shuffle(all.begin(), all.end(), rng.g);
    const int64_t n = i == 1 ? 5 : n_sel;
    std::sort(all.begin(), all.begin() + n);
    std::copy_n(all.begin(), n, &sel[size_t(i * n_sel)]);
  }
  const int64_t ldq = H * (rank + rope);
  const std::vector<float> q = rng.vec(size_t(T * ldq));
  auto decode = [&](ops::Backend& be, Mem& m, const int32_t* list, int64_t ldsel, int64_t ns) {
    float* o = m.put(std::vector<float>(size_t(T * H * rank)));
    ops::MlaDecodeParams p;
    p.q = m.put(q); p.ldq = ldq; p.kv = cache.put(m, true); p.out = o; p.ldo = H * rank;
    p.T = T; p.S = S; p.H = H; p.rank = rank; p.rope = rope; p.pos0 = pos0; p.scale = 0.2f;
    if (list) {
      p.sel = m.put(std::vector<int32_t>(list, list + T * ldsel)); p.ldsel = ldsel; p.n_sel = ns;
    }
    be.mla_decode(p);
    return m.get(o, size_t(T * H * rank));
  };
  run("mla_decode selected positions" + kv_tag(dt), kF32,
      [&](ops::Backend& be, Mem& m) { return decode(be, m, sel.data(), n_sel, n_sel); });
  std::vector<int32_t> every(size_t(T * S), -1);
  for (int64_t i = 0; i < T; ++i) std::iota(&every[size_t(i * S)], &every[size_t(i * S + pos0 + i + 1)], 0);
  // Prefill form: K / V / k_pe as plain arrays.
  const int64_t nope = 24, dv = 20, ldk = H * (nope + dv);
  const std::vector<float> kvb = rng.vec(size_t(S * ldk)), kpe = rng.vec(size_t(S * rope));
  const std::vector<float> qp = rng.vec(size_t(T * H * (nope + rope)));
  auto prefill = [&](ops::Backend& be, Mem& m, const int32_t* list, int64_t ldsel, int64_t ns) {
    float* o = m.put(std::vector<float>(size_t(T * H * dv)));
    const float* k = m.put(kvb);
    ops::MlaPrefillParams p;
    p.q = m.put(qp); p.ldq = H * (nope + rope); p.k_nope = k; p.ldk = ldk; p.hsk = nope + dv;
    p.k_pe = m.put(kpe); p.ldkpe = rope; p.v = k + nope; p.ldv = ldk; p.hsv = nope + dv; p.out = o; p.ldo = H * dv;
    p.T = T; p.S = S; p.H = H; p.nope = nope; p.rope = rope; p.dv = dv; p.pos0 = pos0; p.scale = 0.15f;
    if (list) {
      p.sel = m.put(std::vector<int32_t>(list, list + T * ldsel)); p.ldsel = ldsel; p.n_sel = ns;
    }
    be.mla_prefill(p);
    return m.get(o, size_t(T * H * dv));
  };
  run("mla_prefill selected positions" + kv_tag(dt), kF32,
      [&](ops::Backend& be, Mem& m) { return prefill(be, m, sel.data(), n_sel, n_sel); });
  auto be = make();
  const auto dense_d = run_on(*be, [&](ops::Backend& b, Mem& m) { return decode(b, m, nullptr, 0, 0); });
  const auto all_d = run_on(*be, [&](ops::Backend& b, Mem& m) { return decode(b, m, every.data(), S, S); });
  EXPECT_EQ(0, std::memcmp(dense_d.data(), all_d.data(), dense_d.size() * 4))
      << "mla_decode [" << be->name() << "]: every position listed differs from dense";
  const auto dense_p = run_on(*be, [&](ops::Backend& b, Mem& m) { return prefill(b, m, nullptr, 0, 0); });
  const auto all_p = run_on(*be, [&](ops::Backend& b, Mem& m) { return prefill(b, m, every.data(), S, S); });
  EXPECT_EQ(0, std::memcmp(dense_p.data(), all_p.data(), dense_p.size() * 4))
      << "mla_prefill [" << be->name() << "]: every position listed differs from dense";
  const auto sparse_d = run_on(*be, [&](ops::Backend& b, Mem& m) { return decode(b, m, sel.data(), n_sel, n_sel); });
  EXPECT_NE(0, std::memcmp(dense_d.data(), sparse_d.data(), dense_d.size() * 4)) << "selection had no effect";
}

namespace {
// One GQA attention problem: a sequence's cache of S rows and T queries at positions pos0 .. pos0 + T - 1.
struct GqaCase {
  int64_t H, Hkv, hd, T, S, pos0;
};

std::string gqa_name(const GqaCase& c) {
  return "gqa_attention H" + std::to_string(c.H) + " Hkv" + std::to_string(c.Hkv) + " hd" + std::to_string(c.hd) +
         " T" + std::to_string(c.T) + " S" + std::to_string(c.S) + " pos0 " + std::to_string(c.pos0);
}

// Host inputs: strided q, the fp32 rows kv, and the cache as ops read it (contiguous and, with bs > 0, paged) in
// format dt; kvd: the rows' stored values (fp32: kv itself).
struct GqaInputs {
  GqaCase c;
  int64_t ldq = 0, ldkv = 0, ldo = 0;
  std::vector<float> q, kv, kvd;
  std::unique_ptr<KvLayouts> cache;
};

GqaInputs gqa_inputs(const GqaCase& c, int64_t bs, DType dt = DType::F32) {
  Rng rng(uint64_t(c.H * 1000003 + c.Hkv * 10007 + c.hd * 101 + c.T * 13 + c.S * 7 + c.pos0 + bs * 17));
  GqaInputs in;
  in.c = c;
  in.ldq = c.H * c.hd + 3;
  in.ldkv = 2 * c.Hkv * c.hd + 4;
  in.ldo = c.H * c.hd + 5;
  in.q = rng.vec(size_t(c.T * in.ldq));
  in.kv = rng.vec(size_t(std::max<int64_t>(c.S, 1) * in.ldkv));
  in.kvd = decode_rows(dt, in.kv, in.ldkv, c.S, 2 * c.Hkv * c.hd);
  in.cache = std::make_unique<KvLayouts>(rng, dt, in.kv, in.ldkv, c.S, 2 * c.Hkv * c.hd, bs);
  return in;
}

float gqa_scale(const GqaCase& c) { return 1.5f / std::sqrt(float(c.hd)); }

// Runs queries [r0, r0 + T) of `in` at positions pos0 + r0 .. over the first S cache rows, contiguous or paged;
// returns out[T, H * hd] (the padding columns of each strided out row are checked untouched).
std::vector<float> gqa_run(ops::Backend& be, Mem& m, const GqaInputs& in, bool paged, int64_t r0, int64_t T,
                           int64_t S) {
  const GqaCase& c = in.c;
  const int64_t n = c.H * c.hd;
  const std::vector<float> o0(size_t(std::max<int64_t>(T, 1) * in.ldo), 0.75f);
  ops::GqaAttentionParams p;
  p.q = m.put(in.q) + r0 * in.ldq; p.ldq = in.ldq; p.kv = in.cache->put(m, paged);
  p.out = m.put(o0); p.ldo = in.ldo;
  p.T = T; p.S = S; p.H = c.H; p.Hkv = c.Hkv; p.hd = c.hd; p.pos0 = c.pos0 + r0; p.scale = gqa_scale(c);
  be.gqa_attention(p);
  const std::vector<float> o = m.get(p.out, o0.size());
  std::vector<float> out;
  for (int64_t i = 0; i < T; ++i) {
    out.insert(out.end(), o.begin() + i * in.ldo, o.begin() + i * in.ldo + n);
    for (int64_t j = n; j < in.ldo; ++j)
      EXPECT_EQ(o[size_t(i * in.ldo + j)], 0.75f) << gqa_name(c) << " [" << be.name() << "]: wrote past H * hd";
  }
  return out;
}

// An fp64 oracle independent of the op's code (ref included): kv head of query head h = h * Hkv / H, the cache read
// from the host's contiguous rows (their stored values), softmax as exp(s - max) / Σ.
std::vector<float> gqa_fp64(const GqaInputs& in) {
  const GqaCase& c = in.c;
  const std::vector<float>& kv = in.kvd;
  std::vector<float> out(size_t(c.T * c.H * c.hd));
  for (int64_t i = 0; i < c.T; ++i)
    for (int64_t h = 0; h < c.H; ++h) {
      const int64_t kvh = h * c.Hkv / c.H, last = std::min(c.S - 1, c.pos0 + i);
      const float* q = &in.q[size_t(i * in.ldq + h * c.hd)];
      std::vector<double> s;
      for (int64_t t = 0; t <= last; ++t) {
        const float* k = &kv[size_t(t * in.ldkv + kvh * c.hd)];
        double d = 0.0;
        for (int64_t e = 0; e < c.hd; ++e) d += double(q[e]) * double(k[e]);
        s.push_back(d * double(gqa_scale(c)));
      }
      const double mx = *std::max_element(s.begin(), s.end());
      double z = 0.0;
      for (double& v : s) z += (v = std::exp(v - mx));
      for (int64_t e = 0; e < c.hd; ++e) {
        double acc = 0.0;
        for (int64_t t = 0; t <= last; ++t) acc += s[size_t(t)] * kv[size_t(t * in.ldkv + (c.Hkv + kvh) * c.hd + e)];
        out[size_t(i * c.H * c.hd + h * c.hd + e)] = float(acc / z);
      }
    }
  return out;
}

// Every backend's result (ref's included) also against gqa_fp64.
void run_gqa(const Runner& run, const GqaInputs& in, bool paged, const std::string& tag) {
  const std::vector<float> want = gqa_fp64(in);
  run(tag, kF32, [&](ops::Backend& be, Mem& m) {
    std::vector<float> got = gqa_run(be, m, in, paged, 0, in.c.T, in.c.S);
    expect_close(got, want, kF32, tag + " [" + be.name() + " vs fp64]");
    return got;
  });
}

constexpr GqaCase kGqaHeads[] = {
    {8, 2, 64, 0, 0, 0}, {6, 3, 32, 0, 0, 0}, {4, 4, 16, 0, 0, 0}, {12, 2, 128, 0, 0, 0}, {8, 1, 128, 0, 0, 0}};
}  // namespace

void gqa_attention_cases(const Runner& run, DType dt) {
  for (GqaCase h : kGqaHeads) {
    const auto with = [&](int64_t T, int64_t S, int64_t pos0) { return GqaCase{h.H, h.Hkv, h.hd, T, S, pos0}; };
    std::vector<GqaCase> cs;
    for (int64_t S : {1, 37, 300}) cs.push_back(with(1, S, S - 1));  // decode: the newest position
    cs.push_back(with(19, 19, 0));    // prefill: the whole prompt, causal
    cs.push_back(with(7, 50, 43));    // a chunk appended to a cached prefix
    cs.push_back(with(3, 40, 20));    // cache rows beyond the chunk's positions (masked by causality)
    for (const GqaCase& c : cs) run_gqa(run, gqa_inputs(c, 0, dt), false, gqa_name(c) + kv_tag(dt));
  }
}

void gqa_attention_paged_cases(const Runner& run, const MakeBackend& make, DType dt) {
  for (int64_t bs : {16, 5})
    for (GqaCase c : {GqaCase{8, 2, 64, 1, 300, 299}, GqaCase{8, 2, 64, 7, 37, 30}, GqaCase{6, 3, 32, 1, 16, 15},
                      GqaCase{12, 2, 128, 20, 20, 0}}) {
      const GqaInputs in = gqa_inputs(c, bs, dt);
      const std::string tag = gqa_name(c) + " paged bs" + std::to_string(bs) + kv_tag(dt);
      run_gqa(run, in, true, tag);
      auto be = make();
      const auto a = run_on(*be, [&](ops::Backend& b, Mem& m) { return gqa_run(b, m, in, true, 0, c.T, c.S); });
      const auto b = run_on(*be, [&](ops::Backend& b2, Mem& m) { return gqa_run(b2, m, in, false, 0, c.T, c.S); });
      EXPECT_EQ(0, std::memcmp(a.data(), b.data(), a.size() * 4)) << tag << " [" << be->name()
                                                                   << "]: paged differs from contiguous";
    }
}

void gqa_attention_split_cases(const MakeBackend& make, DType dt) {
  for (GqaCase c : {GqaCase{8, 2, 64, 7, 37, 30}, GqaCase{6, 3, 32, 7, 7, 0}, GqaCase{12, 2, 128, 7, 60, 53}}) {
    const GqaInputs in = gqa_inputs(c, 16, dt);
    const int64_t n = c.H * c.hd;
    auto be = make();
    const auto chunk = run_on(*be, [&](ops::Backend& b, Mem& m) { return gqa_run(b, m, in, false, 0, c.T, c.S); });
    for (bool paged : {false, true}) {
      const std::string tag = gqa_name(c) + (paged ? " paged" : "") + kv_tag(dt) + " [" + be->name() + "]";
      // Row i decoded alone, over the cache as it stood at its step (S = pos0 + i + 1) and over the whole cache.
      for (int64_t i = 0; i < c.T; ++i)
        for (int64_t S : {c.pos0 + i + 1, c.S}) {
          const auto row = run_on(*be, [&](ops::Backend& b, Mem& m) { return gqa_run(b, m, in, paged, i, 1, S); });
          EXPECT_EQ(0, std::memcmp(row.data(), chunk.data() + i * n, size_t(n) * 4))
              << tag << ": row " << i << " decoded alone (S " << S << ") differs from the chunk's";
        }
      // The chunk split in two (3 + 4 rows): the first part over the cache of its own end.
      const auto a = run_on(*be, [&](ops::Backend& b, Mem& m) { return gqa_run(b, m, in, paged, 0, 3, c.pos0 + 3); });
      const auto b = run_on(*be, [&](ops::Backend& b2, Mem& m) { return gqa_run(b2, m, in, paged, 3, 4, c.S); });
      EXPECT_EQ(0, std::memcmp(a.data(), chunk.data(), a.size() * 4)) << tag << ": first part of a split differs";
      EXPECT_EQ(0, std::memcmp(b.data(), chunk.data() + 3 * n, b.size() * 4)) << tag << ": second part differs";
    }
  }
}

}  // namespace ds::test
