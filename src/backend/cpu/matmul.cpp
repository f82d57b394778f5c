// SPDX-License-Identifier: MIT
// Matmul driver: validates the case, prepares padded x (fp32 or bf16; Fast rounds x to bf16 on every path), picks decode (M <= 8: stream weights once,
// N split across threads) or prefill (M > 8: weight panels converted once, dynamic over panels), and runs the
// active ISA's kernels. Also the w_kn form (W stored [K, N]) and the kernel-table selection.
#include <omp.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include "backend/cpu/kernels.h"
#include "ops/ref/ref_backend.h"

namespace ds::cpu {

const Kernels& active_kernels() {
  static const Kernels bf16 = [] {
    Kernels k = kernels_avx512();
    k.isa = Isa::Avx512Bf16;
    k.mm_bf16 = &mm_bf16_rows_avx512bf16;
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

// out[0, n) = W[r, c0 : c0 + n) exactly in fp32 (dtype switch hoisted out of the loop; FP8 block scale applied).
void convert_row(const WeightView& w, int64_t r, int64_t c0, int64_t n, float* out) {
  const int64_t base = r * w.cols + c0;
  switch (w.dtype) {
    case DType::F32: std::memcpy(out, static_cast<const float*>(w.data) + base, size_t(n) * 4); break;
    case DType::BF16: {
      const uint16_t* s = static_cast<const uint16_t*>(w.data) + base;
      for (int64_t i = 0; i < n; ++i) out[i] = bf16_to_f32(s[i]);
      break;
    }
    case DType::F16: {
      const uint16_t* s = static_cast<const uint16_t*>(w.data) + base;
      for (int64_t i = 0; i < n; ++i) out[i] = f16_to_f32(s[i]);
      break;
    }
    default: {  // F8_E4M3 (the driver only routes known dtypes here)
      const uint8_t* s = static_cast<const uint8_t*>(w.data) + base;
      for (int64_t i = 0; i < n; ++i) out[i] = fp8_e4m3_to_f32(s[i]);
      break;
    }
  }
  if (w.scale) {
    const float* srow = w.scale + ((w.row0 + r) / w.block_rows) * w.scale_cols;
    for (int64_t i = 0; i < n; ++i) out[i] *= srow[(c0 + i) / w.block_cols];
  }
}

// y = x · W with W [K, N]: k outer so each weight row is converted once per column chunk; every y element is a
// sequential fp32 FMA chain over k (independent of chunking and threads).
void matmul_kn(const ops::MatmulParams& p, int n_threads, const Kernels& kern) {
  const int64_t M = p.M, N = p.N, K = p.K;
  const WeightView& w = p.w;
  const bool fast = p.precision == ops::Precision::Fast;
  constexpr int64_t C = 512;  // column chunk (a multiple of 16 keeps the vector/tail split fixed per column)
  const int64_t n_chunks = (N + C - 1) / C;
  const int nt = int(std::min<int64_t>(n_chunks, M * N * K < (1 << 19) ? 1 : n_threads));
#pragma omp parallel for schedule(static) num_threads(nt) if (nt > 1)
  for (int64_t c = 0; c < n_chunks; ++c) {
    const int64_t c0 = c * C, nc = std::min(C, N - c0);
    std::vector<float> acc(static_cast<size_t>(M * nc), 0.0f);
    std::vector<float> wrow(static_cast<size_t>(nc));
    for (int64_t k = 0; k < K; ++k) {
      convert_row(w, k, c0, nc, wrow.data());
      for (int64_t m = 0; m < M; ++m) {
        float xv = p.x[m * p.ldx + k];
        if (fast) xv = bf16_to_f32(f32_to_bf16(xv));
        kern.axpy(xv, wrow.data(), acc.data() + m * nc, nc);
      }
    }
    for (int64_t m = 0; m < M; ++m) {
      float* y = p.y + m * p.ldy + c0;
      for (int64_t i = 0; i < nc; ++i) y[i] = p.accumulate ? y[i] + acc[m * nc + i] : acc[m * nc + i];
    }
  }
}

}  // namespace

void matmul(const ops::MatmulParams& p, int n_threads) {
  if (p.M <= 0 || p.N <= 0) return;
  const Kernels& kern = active_kernels();
  const DType dt = p.w.dtype;
  const bool known = dt == DType::F32 || dt == DType::BF16 || dt == DType::F16 || dt == DType::F8_E4M3;
  // Precision::Fast means bf16-rounded activations in the products, on every ISA level and weight dtype (as ref and
  // cuda define it); with a bf16 kernel for the weight dtype they are also multiplied as bf16, else in fp32.
  const bool round_x = p.precision == ops::Precision::Fast;
  const bool fast = round_x && kern.mm_bf16 && (dt == DType::BF16 || dt == DType::F8_E4M3);
  // Block scales: only on FP8, with column blocks that are whole k steps of the kernels.
  const bool scale_ok = !p.w.scale || (dt == DType::F8_E4M3 && p.w.block_rows > 0 && p.w.block_cols > 0 &&
                                       p.w.block_cols % (fast ? 32 : 16) == 0);
  if (!known || !scale_ok) return ref::matmul(p);
  if (p.K <= 0) {
    if (!p.accumulate)
      for (int64_t m = 0; m < p.M; ++m) std::fill_n(p.y + m * p.ldy, p.N, 0.0f);
    return;
  }
  if (p.w_kn) {
    count_matmul(kern.isa, false);
    return matmul_kn(p, n_threads, kern);
  }

  MmJob j;
  j.M = p.M; j.K = p.K; j.Kp = round_up(p.K, 32);
  j.w = p.w.data; j.wt = dt;
  j.scale = p.w.scale; j.scale_cols = p.w.scale_cols; j.row0 = p.w.row0;
  j.br = p.w.block_rows; j.bc = p.w.block_cols;
  j.y = p.y; j.ldy = p.ldy; j.accumulate = p.accumulate;
  j.prefill = p.M > kDecodeMaxM;

  // x copied once into a zero-padded buffer: kernels then load whole vectors past K without masks.
  static thread_local std::vector<float> xs;
  static thread_local std::vector<uint16_t> xbs;
  if (fast) {
    uint16_t* xb = scratch(xbs, size_t(p.M * j.Kp));
    for (int64_t m = 0; m < p.M; ++m) {
      for (int64_t k = 0; k < p.K; ++k) xb[m * j.Kp + k] = f32_to_bf16(p.x[m * p.ldx + k]);
      std::fill(xb + m * j.Kp + p.K, xb + (m + 1) * j.Kp, uint16_t(0));
    }
    j.xb = xb;
  } else {
    float* xp = scratch(xs, size_t(p.M * j.Kp));
    for (int64_t m = 0; m < p.M; ++m) {
      if (round_x)
        for (int64_t k = 0; k < p.K; ++k) xp[m * j.Kp + k] = bf16_to_f32(f32_to_bf16(p.x[m * p.ldx + k]));
      else
        std::memcpy(xp + m * j.Kp, p.x + m * p.ldx, size_t(p.K) * 4);
      std::fill(xp + m * j.Kp + p.K, xp + (m + 1) * j.Kp, 0.0f);
    }
    j.xp = xp;
  }
  const MmRowsFn fn = fast ? kern.mm_bf16 : kern.mm_f32;
  count_matmul(kern.isa, fast);

  // Decode streams the weight once: below ~512 KiB of weights one thread finishes before a fork/join would pay off
  // (and waking a second thread costs far more when the cores are shared).
  const int64_t work = p.M * p.N * p.K;
  const int64_t w_bytes = p.N * p.K * dtype_size(dt);
  const bool small = j.prefill ? work < (1 << 15) : w_bytes < (512 << 10);
  const int nt = small ? 1 : std::max(1, n_threads);
  if (!j.prefill) {
    // Contiguous N chunks (multiples of 16 rows), one per thread.
    const int64_t chunk = round_up((p.N + nt - 1) / nt, 16);
    const int nt_eff = int((p.N + chunk - 1) / chunk);
    if (nt_eff <= 1) return fn(j, 0, p.N, nullptr);
#pragma omp parallel num_threads(nt_eff)
    {
      const int64_t n0 = omp_get_thread_num() * chunk, n1 = std::min(p.N, n0 + chunk);
      if (n0 < n1) fn(j, n0, n1, nullptr);
    }
    return;
  }
  // Prefill: panels of NB rows sized to stay in L2 (~256 KiB), NB a multiple of every tile height (24).
  const int64_t esz = fast ? 2 : 4;
  const int64_t NB = std::clamp<int64_t>((256 << 10) / (j.Kp * esz) / 24 * 24, 24, 240);
  const int64_t n_panels = (p.N + NB - 1) / NB;
  const int nt_eff = int(std::min<int64_t>(nt, n_panels));
  static thread_local std::vector<float> panels;
  const size_t panel_floats = size_t(NB * j.Kp * esz / 4 + 16);
  float* pbase = scratch(panels, panel_floats * size_t(nt_eff));
#pragma omp parallel for schedule(dynamic, 1) num_threads(nt_eff) if (nt_eff > 1)
  for (int64_t b = 0; b < n_panels; ++b)
    fn(j, b * NB, std::min(p.N, (b + 1) * NB), pbase + panel_floats * size_t(omp_get_thread_num()));
}

}  // namespace ds::cpu
