// SPDX-License-Identifier: MIT
// MoE FFN over the selected experts only (ops/ref/ref_moe.cpp `moe` is the oracle). Everything stays on the device
// (the ids come from route on the device; the host never waits):
//   1. count the (token, slot) pairs per expert, prefix-sum them, scatter the pairs so each expert's tokens are
//      contiguous (slot order inside an expert is arbitrary; every pair's result is computed independently, so the
//      output does not depend on it);
//   2. grouped gate/up products: block (n tile, expert) walks that expert's rows, gathering x rows by token;
//   3. silu(g) * u; grouped down product into one row per pair;
//   4. y[t] += Σ_j w[t,j] · out[pair(t,j)] in j order, as ref accumulates.
#include "backend/cuda/check.h"
#include "backend/cuda/device_memory.h"
#include "backend/cuda/launch.h"
#include "backend/cuda/matmul_tile.cuh"

namespace ds::cuda {

namespace {

struct Groups {
  int32_t* count;      // [E] pairs per expert
  int32_t* offset;     // [E + 1] first grouped row of each expert
  int32_t* cursor;     // [E] scatter cursors
  int32_t* row_token;  // [R] token of each grouped row
  int32_t* pair_row;   // [R] grouped row of pair (t, j) = t*k + j; -1 for an id outside [0, E)
};

// An expert without weights (held by another process) takes no pairs.
__device__ bool held(const ops::ExpertWeights* experts, int32_t e, int64_t E) {
  return e >= 0 && e < E && experts[e].gate.data != nullptr;
}

__global__ void count_kernel(const int32_t* ids, int64_t R, int64_t E, const ops::ExpertWeights* experts, Groups g) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < R; i += int64_t(gridDim.x) * blockDim.x) {
    const int32_t e = ids[i];
    if (held(experts, e, E)) atomicAdd(&g.count[e], 1);
  }
}

__global__ void offsets_kernel(int64_t E, Groups g) {  // one thread: E is a few hundred
  int32_t acc = 0;
  for (int64_t e = 0; e < E; ++e) {
    g.offset[e] = acc;
    acc += g.count[e];
  }
  g.offset[E] = acc;
}

__global__ void scatter_kernel(const int32_t* ids, int64_t R, int64_t k, int64_t E, const ops::ExpertWeights* experts,
                               Groups g) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < R; i += int64_t(gridDim.x) * blockDim.x) {
    const int32_t e = ids[i];
    if (!held(experts, e, E)) {  // out of range (ref asserts) or another process's: contributes nothing
      g.pair_row[i] = -1;
      continue;
    }
    const int32_t row = g.offset[e] + atomicAdd(&g.cursor[e], 1);
    g.row_token[row] = int32_t(i / k);
    g.pair_row[i] = row;
  }
}

// hg/hu[rows of expert e, n tile] = x[token of row] · gate_e^T / up_e^T.
template <DType DT>
__global__ void __launch_bounds__(kTileThreads)
    gate_up_kernel(ops::MoeParams p, const ops::ExpertWeights* experts, Groups g, float* hg, float* hu) {
  __shared__ TileSmem sm;
  const int64_t e = blockIdx.y, n0 = int64_t(blockIdx.x) * kTile;
  const int64_t rows = g.count[e], r0 = g.offset[e];
  if (rows == 0) return;
  const WeightView gate = experts[e].gate, up = experts[e].up;
  const bool fast = p.precision == ops::Precision::Fast;
  for (int64_t m0 = 0; m0 < rows; m0 += kTile) {
    mm_tile<DT, false>(p.x, p.ldx, g.row_token + r0, rows, gate, hg + r0 * p.inter, p.inter, p.inter, p.D, m0, n0,
                       fast, false, sm);
    mm_tile<DT, false>(p.x, p.ldx, g.row_token + r0, rows, up, hu + r0 * p.inter, p.inter, p.inter, p.D, m0, n0,
                       fast, false, sm);
  }
}

__global__ void silu_rows_kernel(const int32_t* offset_end, int64_t E, int64_t inter, float* hg, const float* hu) {
  const int64_t total = int64_t(offset_end[E]) * inter;  // only the grouped rows that exist
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < total; i += int64_t(gridDim.x) * blockDim.x) {
    const float v = hg[i];
    hg[i] = v / (1.0f + expf(-v)) * hu[i];
  }
}

// out[rows of expert e, n tile] = h[rows] · down_e^T.
template <DType DT>
__global__ void __launch_bounds__(kTileThreads)
    down_kernel(ops::MoeParams p, const ops::ExpertWeights* experts, Groups g, const float* h, float* out) {
  __shared__ TileSmem sm;
  const int64_t e = blockIdx.y, n0 = int64_t(blockIdx.x) * kTile;
  const int64_t rows = g.count[e], r0 = g.offset[e];
  if (rows == 0) return;
  const WeightView down = experts[e].down;
  const bool fast = p.precision == ops::Precision::Fast;
  for (int64_t m0 = 0; m0 < rows; m0 += kTile)
    mm_tile<DT, false>(h + r0 * p.inter, p.inter, nullptr, rows, down, out + r0 * p.D, p.D, p.D, p.inter, m0, n0,
                       fast, false, sm);
}

__global__ void combine_kernel(ops::MoeParams p, Groups g, const float* out) {
  const int64_t total = p.T * p.D;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < total; i += int64_t(gridDim.x) * blockDim.x) {
    const int64_t t = i / p.D, d = i % p.D;
    float y = p.y[t * p.ldy + d];
    for (int64_t j = 0; j < p.k; ++j) {
      const int32_t row = g.pair_row[t * p.k + j];
      if (row >= 0) y += p.weights[t * p.k + j] * out[int64_t(row) * p.D + d];
    }
    p.y[t * p.ldy + d] = y;
  }
}

// Experts split across processes (ops/params.h): each held pair's output row to its slot row, or y from rows
// gathered from every process, added in the one-process order.
__global__ void slot_out_kernel(ops::MoeParams p, Groups g, const float* out) {
  const int64_t total = p.T * p.k * p.D;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < total; i += int64_t(gridDim.x) * blockDim.x) {
    const int64_t pair = i / p.D, d = i % p.D;
    const int32_t row = g.pair_row[pair];
    if (row >= 0) p.slot_out[int64_t(p.slot_row[pair]) * p.D + d] = out[int64_t(row) * p.D + d];
  }
}

__global__ void combine_slots_kernel(ops::MoeParams p) {
  const int64_t total = p.T * p.D;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < total; i += int64_t(gridDim.x) * blockDim.x) {
    const int64_t t = i / p.D, d = i % p.D;
    float y = p.y[t * p.ldy + d];
    for (int64_t j = 0; j < p.k; ++j)
      y += p.weights[t * p.k + j] * p.slot_in[int64_t(p.slot_row[t * p.k + j]) * p.D + d];
    p.y[t * p.ldy + d] = y;
  }
}

size_t align256(size_t n) { return (n + 255) / 256 * 256; }
unsigned grid1d(int64_t n) { return unsigned(std::max<int64_t>(1, std::min<int64_t>(ceil_div(n, 256), 4096))); }

}  // namespace

void launch_moe(const ops::MoeParams& p, const ops::ExpertWeights* experts_dev, DeviceMemory& mem, cudaStream_t s) {
  const int64_t R = p.T * p.k, E = p.E;
  DS_CHECK(E <= 65535, "cuda moe: ", E, " experts exceed one launch");
  if (p.slot_in) {
    combine_slots_kernel<<<grid1d(p.T * p.D), 256, 0, s>>>(p);
    DS_CU_LAUNCHED();
    return;
  }
  // One stream-ordered scratch block: [ints | hg | hu | out].
  const size_t ints = align256(size_t(4 * E + 1 + 2 * R) * 4);
  const size_t hbytes = align256(size_t(R * p.inter) * 4), obytes = align256(size_t(R * p.D) * 4);
  DeviceMemory::Scratch scratch(s, ints + 2 * hbytes + obytes);
  uint8_t* base = static_cast<uint8_t*>(scratch.data());
  int32_t* iv = reinterpret_cast<int32_t*>(base);
  Groups g{iv, iv + E, iv + 2 * E + 1, iv + 3 * E + 1, iv + 3 * E + 1 + R};
  float* hg = reinterpret_cast<float*>(base + ints);
  float* hu = reinterpret_cast<float*>(base + ints + hbytes);
  float* out = reinterpret_cast<float*>(base + ints + 2 * hbytes);

  DS_CU(cudaMemsetAsync(g.count, 0, size_t(E) * 4, s));
  DS_CU(cudaMemsetAsync(g.cursor, 0, size_t(E) * 4, s));
  count_kernel<<<grid1d(R), 256, 0, s>>>(p.ids, R, E, experts_dev, g);
  offsets_kernel<<<1, 1, 0, s>>>(E, g);
  scatter_kernel<<<grid1d(R), 256, 0, s>>>(p.ids, R, p.k, E, experts_dev, g);
  DS_CU_LAUNCHED();
  DType dt = DType::F32;
  bool any = false;
  for (int64_t e = 0; e < E && !any; ++e)
    if (p.experts[e].gate.data) dt = p.experts[e].gate.dtype, any = true;
  if (!any) return;  // every expert is another process's
  dispatch_weight(dt, "moe", [&]<DType DT>() {
    gate_up_kernel<DT><<<dim3(unsigned(ceil_div(p.inter, kTile)), unsigned(E)), kTileThreads, 0, s>>>(
        p, experts_dev, g, hg, hu);
    silu_rows_kernel<<<grid1d(R * p.inter), 256, 0, s>>>(g.offset, E, p.inter, hg, hu);
    down_kernel<DT><<<dim3(unsigned(ceil_div(p.D, kTile)), unsigned(E)), kTileThreads, 0, s>>>(
        p, experts_dev, g, hg, out);
  });
  if (p.slot_out) slot_out_kernel<<<grid1d(R * p.D), 256, 0, s>>>(p, g, out);
  else combine_kernel<<<grid1d(p.T * p.D), 256, 0, s>>>(p, g, out);
  DS_CU_LAUNCHED();
}

}  // namespace ds::cuda
