// SPDX-License-Identifier: MIT
// Matmul driver: validates the case, prepares padded x (fp32 or bf16; Fast rounds x to bf16 on every path), picks
// decode (M <= 8: stream the weights once, outputs split across threads) or prefill (M > 8: weight panels converted
// once, dynamic over panels), and runs the active ISA's kernels. Also the w_kn form (W stored [K, N]), batches of
// independent small-M products run as one balanced parallel pass, and the kernel-table selection.
#include <algorithm>
#include <cstring>
#include <vector>

#include "backend/cpu/kernels.h"
#include "backend/cpu/qdot.h"
#include "backend/cpu/qfdot.h"
#include "backend/cpu/thread_pool.h"
#include "base/error.h"
#include "base/huge_pages.h"
#include "base/quant.h"
#include "ops/ref/ref_backend.h"

namespace ds::cpu {

const Kernels& active_kernels() {
  static const Kernels bf16 = [] {
    Kernels k = kernels_avx512();
    k.isa = Isa::Avx512Bf16;
    k.mm_bf16 = &mm_bf16_rows_avx512bf16;
    k.mm_r16_bf16 = &mm_r16_bf16_avx512bf16;
    k.mm_r16_f32 = &mm_r16_f32_avx512vbmi;
    return k;
  }();
  switch (active_isa()) {
    case Isa::Avx512Bf16: return bf16;
    case Isa::Avx512: return kernels_avx512();
    case Isa::Avx2: return kernels_avx2();
    default: return kernels_scalar();
  }
}

namespace {

int64_t round_up(int64_t a, int64_t b) { return (a + b - 1) / b * b; }

// Per-calling-thread scratch that only grows (the backend is driven by one thread at a time).
template <typename T>
T* scratch(std::vector<T>& v, size_t n) {
  if (v.size() < n) v.resize(n);
  return v.data();
}

// y[:, c0:c1) = x · W[:, c0:c1) with W [K, N] (single thread): k outer so each weight row segment is converted once
// per column chunk; every y element is a sequential fp32 FMA chain over k (independent of chunking and threads).
void matmul_kn_cols(const ops::MatmulParams& p, const Kernels& kern, int64_t c0, int64_t c1) {
  const int64_t M = p.M, K = p.K;
  const bool fast = p.precision == ops::Precision::Fast;
  constexpr int64_t C = 512;  // column chunk (a multiple of 16 keeps the vector/tail split fixed per column)
  std::vector<float> acc(static_cast<size_t>(M * C)), wrow(static_cast<size_t>(C));
  for (int64_t cc = c0; cc < c1; cc += C) {
    const int64_t nc = std::min(C, c1 - cc);
    std::fill(acc.begin(), acc.end(), 0.0f);
    for (int64_t k = 0; k < K; ++k) {
      const float* srow = p.w.scale ? p.w.scale + ((p.w.row0 + k) / p.w.block_rows) * p.w.scale_cols : nullptr;
      kern.convert_cols(p.w.dtype, static_cast<const uint8_t*>(p.w.data) + k * p.w.cols * dtype_size(p.w.dtype), cc, nc,
                        srow, p.w.block_cols, wrow.data());
      for (int64_t m = 0; m < M; ++m) {
        float xv = p.x[m * p.ldx + k];
        if (fast) xv = bf16_to_f32(f32_to_bf16(xv));
        kern.axpy(xv, wrow.data(), acc.data() + m * nc, nc);
      }
    }
    for (int64_t m = 0; m < M; ++m) {
      float* y = p.y + m * p.ldy + cc;
      for (int64_t i = 0; i < nc; ++i) y[i] = p.accumulate ? y[i] + acc[m * nc + i] : acc[m * nc + i];
    }
  }
}

// One product made ready to run by ranges of its outputs [n0, n1) from any thread: x copied (for Fast, rounded to
// bf16) into a zero-padded buffer so kernels load whole vectors past K without masks, and the kernel chosen.
struct Prepared {
  // Rows: row-major weights (decode tiles for M <= 8, prefill panels above); Rows16: the CPU layout (one kernel for
  // every M); Kn: W stored [K, N]; Block: ggml block weights, row by row (base/quant.h); Ref: a case the kernels do
  // not take; Zero: K == 0.
  enum class Kind { Rows, Rows16, Kn, Block, Ref, Zero } kind = Kind::Rows;
  const ops::MatmulParams* p = nullptr;
  MmJob j;
  MmRowsFn fn = nullptr;
  int64_t row_bytes = 0;  // weight bytes per output column (what a decode step streams)
  // Block: Precision::Fast multiplies int8 activation blocks (qdot, x quantised into xq, one row per a_stride bytes);
  // Precision::F32 takes fp32 dots of x (j.xp) with the exact weight values (qfdot, or the row dequantised).
  QDotFn qdot = nullptr;
  QDotRowsFn qdot_rows = nullptr;  // M = 1: several weight rows per call (bitwise qdot's results)
  QFDotFn qfdot = nullptr;
  QFDotRowsFn qfdot_rows = nullptr;  // M = 1: several weight rows per call (bitwise qfdot's results)
  QGemmFn qgemm = nullptr;           // every M: tiles over packed activations (bitwise qdot's results)
  QPackedAct packed;
  const QuantFormat* fmt = nullptr;
  const uint8_t* xq = nullptr;
  int64_t a_stride = 0;
};

bool fast_kernel(const ops::MatmulParams& p, const Kernels& kern) {
  return p.precision == ops::Precision::Fast && kern.mm_bf16 &&
         (p.w.dtype == DType::BF16 || p.w.dtype == DType::F8_E4M3);
}

// Bytes of x scratch (in units of uint32) that prepare() needs for p.
size_t x_scratch_words(const ops::MatmulParams& p) { return size_t(p.M * round_up(std::max<int64_t>(p.K, 1), 32)); }

// Block weights (prepare() made the x rows): the products of weight rows [n0, n1) with every x row.
void run_block_rows(const Prepared& r, const Kernels& kern, int64_t n0, int64_t n1) {
  const ops::MatmulParams& p = *r.p;
  static thread_local std::vector<float> wrow, dots;
  float* out = scratch(dots, size_t(p.M));
  if (!r.qdot) scratch(wrow, size_t(p.K));
  const uint8_t* w = static_cast<const uint8_t*>(p.w.data);
  if (r.qgemm) {
    // Activation rows in chunks that stay in L2 while the range's weight rows pass by in tiles.
    const int64_t mc = std::min<int64_t>(std::max<int64_t>((192 << 10) / r.packed.q_stride, 3), p.M);
    for (int64_t m0 = 0; m0 < p.M; m0 += mc) {
      QPackedAct x = r.packed;
      x.q += m0 * x.q_stride;
      x.d += m0 * x.d_stride;
      r.qgemm(w + n0 * r.row_bytes, r.row_bytes, int(n1 - n0), x, int(std::min(mc, p.M - m0)), p.K,
              p.y + m0 * p.ldy + n0, p.ldy, p.accumulate);
    }
    return;
  }
  if (p.M == 1 && (r.qdot_rows || r.qfdot_rows)) {
    constexpr int64_t kChunk = 64;  // outputs per call, through the dots scratch
    float* o = scratch(dots, size_t(kChunk));
    for (int64_t c0 = n0; c0 < n1; c0 += kChunk) {
      const int R = int(std::min(kChunk, n1 - c0));
      if (r.qdot_rows) r.qdot_rows(w + c0 * r.row_bytes, r.row_bytes, R, r.xq, p.K, o);
      else r.qfdot_rows(w + c0 * r.row_bytes, r.row_bytes, R, r.j.xp, p.K, o);
      float* y = p.y + c0;
      for (int i = 0; i < R; ++i) y[i] = p.accumulate ? y[i] + o[i] : o[i];
    }
    return;
  }
  for (int64_t n = n0; n < n1; ++n) {
    const uint8_t* row = w + n * r.row_bytes;
    if (r.qdot) {
      r.qdot(row, r.xq, r.a_stride, int(p.M), p.K, out, 1);
    } else if (r.qfdot) {
      r.qfdot(row, r.j.xp, r.j.Kp, int(p.M), p.K, out, 1);
    } else {
      r.fmt->to_f32(row, wrow.data(), p.K);
      for (int64_t m = 0; m < p.M; ++m) out[m] = kern.dot(r.j.xp + m * r.j.Kp, wrow.data(), p.K);
    }
    for (int64_t m = 0; m < p.M; ++m) {
      float* y = p.y + m * p.ldy + n;
      *y = p.accumulate ? *y + out[m] : out[m];
    }
  }
}

// Block weights: x rows for the kernels. Fast: quantised to the format's activation blocks (base/quant.h, the
// same blocks ref::matmul models); F32: copied zero-padded like the Rows path.
void prepare_block(Prepared& r, const Kernels& kern, uint32_t* xbuf) {
  const ops::MatmulParams& p = *r.p;
  r.kind = Prepared::Kind::Block;
  r.fmt = quant_format(p.w.dtype);
  r.row_bytes = p.w.row_bytes();
  r.j.Kp = round_up(p.K, 32);
  if (p.precision == ops::Precision::Fast) {
    r.qdot = qdot_for(p.w.dtype, kern.isa);
    DS_CHECK(r.qdot, "matmul: no integer dot product for weight format ", dtype_name(p.w.dtype));
    r.qdot_rows = qdot_rows_for(p.w.dtype, kern.isa);
    r.a_stride = row_bytes(r.fmt->act, p.K);
    uint8_t* xq = reinterpret_cast<uint8_t*>(xbuf);
    for (int64_t m = 0; m < p.M; ++m) quantize_act(r.fmt->act, p.x + m * p.ldx, xq + m * r.a_stride, p.K);
    r.xq = xq;
    if (r.fmt->act == DType::Q8_0) r.qgemm = qgemm_for(p.w.dtype, kern.isa);
    if (r.qgemm) {  // packed after the blocks (x_scratch_words leaves room: 34 + 36 bytes per 32 elements at most)
      const int64_t nb = p.K / 32;
      r.packed.q_stride = packed_q_stride(nb);
      r.packed.d_stride = packed_d_stride(nb);
      uint8_t* q = xq + round_up(p.M * r.a_stride, 4);
      float* d = reinterpret_cast<float*>(q + p.M * r.packed.q_stride);
      pack_q8_0_act(xq, r.a_stride, int(p.M), nb, q, d);
      r.packed.q = q;
      r.packed.d = d;
    }
  } else {
    r.qfdot = qfdot_for(p.w.dtype, kern.isa);
    r.qfdot_rows = qfdot_rows_for(p.w.dtype, kern.isa);
    float* xp = reinterpret_cast<float*>(xbuf);
    for (int64_t m = 0; m < p.M; ++m) {
      std::memcpy(xp + m * r.j.Kp, p.x + m * p.ldx, size_t(p.K) * 4);
      std::fill(xp + m * r.j.Kp + p.K, xp + (m + 1) * r.j.Kp, 0.0f);
    }
    r.j.xp = xp;
  }
}

Prepared prepare(const ops::MatmulParams& p, const Kernels& kern, uint32_t* xbuf) {
  Prepared r;
  r.p = &p;
  const DType dt = p.w.dtype;
  if (is_block_dtype(dt)) {
    // Block weights are row-major rows of whole blocks; read transposed they go to the reference.
    if (p.w_kn || p.w.layout != WeightLayout::RowMajor || p.w.scale || !quant_format(dt)) r.kind = Prepared::Kind::Ref;
    else if (p.K <= 0) r.kind = Prepared::Kind::Zero;
    else prepare_block(r, kern, xbuf);
    return r;
  }
  const bool known = dt == DType::F32 || dt == DType::BF16 || dt == DType::F16 || dt == DType::F8_E4M3;
  // Precision::Fast means bf16-rounded activations in the products, on every ISA level and weight dtype (as ref and
  // cuda define it); with a bf16 kernel for the weight dtype they are also multiplied as bf16, else in fp32.
  const bool round_x = p.precision == ops::Precision::Fast;
  const bool fast = fast_kernel(p, kern);
  // Block scales: only on FP8, with column blocks that are whole k steps of the kernels.
  // Rows16 weights were placed only where the layout holds them (BF16 / F8_E4M3, scale blocks of whole 16-row blocks
  // and column groups): see WeightArena::place.
  const bool rows16 = p.w.layout == WeightLayout::Rows16;
  const bool scale_ok = !p.w.scale || rows16 ||
                        (dt == DType::F8_E4M3 && p.w.block_rows > 0 && p.w.block_cols > 0 &&
                         p.w.block_cols % (fast ? 32 : 16) == 0);
  if (!known || !scale_ok) { r.kind = Prepared::Kind::Ref; return r; }
  if (p.K <= 0) { r.kind = Prepared::Kind::Zero; return r; }
  r.row_bytes = rows16 ? rows16_block_bytes(dt, p.K) / 16 : p.K * dtype_size(dt);
  if (p.w_kn) {
    DS_CHECK(!rows16, "matmul: a Rows16 weight cannot be used transposed (w_kn); it is prepared as MatmulOnly");
    r.kind = Prepared::Kind::Kn;
    return r;
  }

  MmJob& j = r.j;
  j.M = p.M; j.K = p.K; j.Kp = round_up(p.K, 32);
  j.w = p.w.data; j.wt = dt;
  j.scale = p.w.scale; j.scale_cols = p.w.scale_cols; j.row0 = p.w.row0;
  j.br = p.w.block_rows; j.bc = p.w.block_cols;
  j.y = p.y; j.ldy = p.ldy; j.accumulate = p.accumulate;
  j.prefill = p.M > kDecodeMaxM && !rows16;  // Rows16 kernels take every M with the same padded x rows
  if (rows16) {
    r.kind = Prepared::Kind::Rows16;
    r.fn = fast ? kern.mm_r16_bf16 : kern.mm_r16_f32;
  }
  if (fast) {
    uint16_t* xb = reinterpret_cast<uint16_t*>(xbuf);
    for (int64_t m = 0; m < p.M; ++m) {
      for (int64_t k = 0; k < p.K; ++k) xb[m * j.Kp + k] = f32_to_bf16(p.x[m * p.ldx + k]);
      std::fill(xb + m * j.Kp + p.K, xb + (m + 1) * j.Kp, uint16_t(0));
    }
    j.xb = xb;
  } else {
    float* xp = reinterpret_cast<float*>(xbuf);
    for (int64_t m = 0; m < p.M; ++m) {
      if (round_x)
        for (int64_t k = 0; k < p.K; ++k) xp[m * j.Kp + k] = bf16_to_f32(f32_to_bf16(p.x[m * p.ldx + k]));
      else
        std::memcpy(xp + m * j.Kp, p.x + m * p.ldx, size_t(p.K) * 4);
      std::fill(xp + m * j.Kp + p.K, xp + (m + 1) * j.Kp, 0.0f);
    }
    j.xp = xp;
  }
  if (!rows16) r.fn = fast ? kern.mm_bf16 : kern.mm_f32;
  return r;
}

// Outputs [n0, n1) of a prepared small-M product, on the calling thread.
void run_range(const Prepared& r, const Kernels& kern, int64_t n0, int64_t n1) {
  if (r.kind == Prepared::Kind::Kn) matmul_kn_cols(*r.p, kern, n0, n1);
  else if (r.kind == Prepared::Kind::Block) run_block_rows(r, kern, n0, n1);
  else r.fn(r.j, n0, n1, nullptr);
}

// Prefill (M > 8): panels of NB rows sized to stay in L2 (~256 KiB), NB a multiple of every tile height (24),
// converted once and reused over all M; dynamic over panels.
void run_prefill(const Prepared& r, int n_threads) {
  const MmJob& j = r.j;
  const ops::MatmulParams& p = *r.p;
  const int64_t esz = j.xb ? 2 : 4;
  const int64_t NB = std::clamp<int64_t>((256 << 10) / (j.Kp * esz) / 24 * 24, 24, 240);
  const int64_t n_panels = (p.N + NB - 1) / NB;
  const int nt_eff = int(std::min<int64_t>(p.M * p.N * p.K < (1 << 15) ? 1 : std::max(1, n_threads), n_panels));
  static thread_local std::vector<float> panels;
  const size_t panel_floats = size_t(NB * j.Kp * esz / 4 + 16);
  float* pbase = scratch(panels, panel_floats * size_t(nt_eff));
  parallel_dynamic(n_panels, nt_eff, [&](int64_t b, int t) {
    r.fn(j, b * NB, std::min(p.N, (b + 1) * NB), pbase + panel_floats * size_t(t));
  });
}

// Rows16 with many tokens: panels of 64 rows (a multiple of every block group), dynamic over the threads; each
// panel runs all tokens over its rows while they are hot in cache.
void run_rows16_panels(const Prepared& r, int n_threads) {
  const ops::MatmulParams& p = *r.p;
  constexpr int64_t NB = 64;
  const int64_t n_panels = (p.N + NB - 1) / NB;
  const int nt = int(std::min<int64_t>(p.M * p.N * p.K < (1 << 15) ? 1 : std::max(1, n_threads), n_panels));
  parallel_dynamic(n_panels, nt, [&](int64_t b, int) { r.fn(r.j, b * NB, std::min(p.N, (b + 1) * NB), nullptr); });
}

// Small-M products (several at once: independent products of one step) as one parallel pass: their outputs are
// laid end to end and cut into pieces of about kPieceBytes of weights (whole row tiles: results never depend on
// where a piece starts), handed out to the threads one at a time, so a thread slowed by a noisy neighbour or a
// cold start takes fewer pieces instead of holding up the op. Below ~512 KiB of weights in all, one thread finishes
// before the others could help.
void run_small(const std::vector<Prepared>& rs, const Kernels& kern, int n_threads) {
  constexpr int64_t kPieceBytes = 512 << 10;
  int64_t total = 0;
  for (const Prepared& r : rs) total += r.p->N * r.row_bytes * (r.kind == Prepared::Kind::Block ? r.p->M : 1);
  const int nt = total < (512 << 10) ? 1 : std::max(1, n_threads);
  if (nt == 1) {
    for (const Prepared& r : rs) run_range(r, kern, 0, r.p->N);
    return;
  }
  struct Piece { size_t job; int64_t n0, n1; };
  std::vector<Piece> pieces;
  for (size_t i = 0; i < rs.size(); ++i) {
    // Prefill tiles of block weights: the pieces' work grows with the tokens, so fewer rows per piece.
    const int64_t passes = rs[i].qgemm ? (rs[i].p->M + 63) / 64 : 1;
    // Whole groups of the kernel's row tile: Rows16 decode multiplies 4 blocks of 16 rows at once (their independent
    // chains hide the FMA latency; a lone block runs at a third of the speed), the row-major tiles 6 or 8 rows.
    const int64_t unit = rs[i].kind == Prepared::Kind::Rows16 ? 64 : rs[i].kind == Prepared::Kind::Rows ? 48 : 16;
    const int64_t N = rs[i].p->N,
                  rows = std::max<int64_t>(unit, round_up(kPieceBytes / (rs[i].row_bytes * passes), unit));
    for (int64_t n0 = 0; n0 < N; n0 += rows) pieces.push_back({i, n0, std::min(N, n0 + rows)});
  }
  parallel_dynamic(int64_t(pieces.size()), nt, [&](int64_t k, int) {
    const Piece& pc = pieces[size_t(k)];
    run_range(rs[pc.job], kern, pc.n0, pc.n1);
  });
}

}  // namespace

void matmul_batch(const ops::MatmulParams* ps, size_t n, int n_threads) {
  const Kernels& kern = active_kernels();
  static thread_local GrowBuffer xs;  // a prefill's MoE batch converts ~25 MB of activations here: huge pages
  size_t words = 0;
  for (size_t i = 0; i < n; ++i)
    if (ps[i].M > 0 && ps[i].N > 0) words += x_scratch_words(ps[i]) + 16;
  uint32_t* xbuf = xs.get<uint32_t>(words);
  std::vector<Prepared> small;
  for (size_t i = 0; i < n; ++i) {
    const ops::MatmulParams& p = ps[i];
    if (p.M <= 0 || p.N <= 0) continue;
    Prepared r = prepare(p, kern, xbuf);
    xbuf += x_scratch_words(p) + 16;
    if (r.kind == Prepared::Kind::Ref) {
      ref::matmul(p);
    } else if (r.kind == Prepared::Kind::Zero) {
      if (!p.accumulate)
        for (int64_t m = 0; m < p.M; ++m) std::fill_n(p.y + m * p.ldy, p.N, 0.0f);
    } else {
      count_matmul(kern.isa, r.fn && (r.fn == kern.mm_bf16 || r.fn == kern.mm_r16_bf16));
      if (r.kind == Prepared::Kind::Rows && r.j.prefill) run_prefill(r, n_threads);
      else if (r.kind == Prepared::Kind::Rows16 && p.M > kDecodeMaxM) run_rows16_panels(r, n_threads);
      else small.push_back(r);
    }
  }
  if (!small.empty()) run_small(small, kern, n_threads);
}

void matmul(const ops::MatmulParams& p, int n_threads) { matmul_batch(&p, 1, n_threads); }

}  // namespace ds::cpu
