// SPDX-License-Identifier: MIT
// Expert routing on the device (ops/ref/ref_moe.cpp `route` is the oracle; deepseek_spec.md §1.7). One block per
// token: the threads compute the scores, then thread 0 applies the group rule and the top-k sequentially, in the
// same order and precision as ref (softmax sums in fp64, ties to the lower index, dropped groups at -inf), so the
// selected ids match ref exactly. E is a few hundred at most: the sequential part is microseconds per token.
#include <cmath>

#include "backend/cuda/check.h"
#include "backend/cuda/common.cuh"
#include "backend/cuda/launch.h"

namespace ds::cuda {

namespace {

// Index of the largest v[i] not yet used, the lowest index on ties (std::stable_sort descending order).
__device__ int64_t argmax_unused(const float* v, const unsigned char* used, int64_t n) {
  int64_t best = -1;
  for (int64_t i = 0; i < n; ++i)
    if (!used[i] && (best < 0 || v[i] > v[best])) best = i;
  return best;
}

__global__ void route_kernel(ops::RouteParams p) {
  extern __shared__ float sh[];
  float* s = sh;                   // [E] scores
  float* b = s + p.E;              // [E] biased scores (selection keys)
  float* gscore = b + p.E;         // [n_group]
  unsigned char* used = reinterpret_cast<unsigned char*>(gscore + p.n_group);  // [max(E, n_group)]
  __shared__ float mx;
  __shared__ double sum;
  const int64_t E = p.E;
  for (int64_t t = blockIdx.x; t < p.T; t += gridDim.x) {
    const float* lg = p.logits + t * E;
    if (p.scoring == ops::Scoring::Softmax) {
      if (threadIdx.x == 0) {  // sequential: the same summation order as ref
        float m = -INFINITY;
        for (int64_t e = 0; e < E; ++e) m = fmaxf(m, lg[e]);
        double acc = 0.0;
        for (int64_t e = 0; e < E; ++e) acc += exp(double(lg[e]) - m);
        mx = m;
        sum = acc;
      }
      __syncthreads();
      for (int64_t e = threadIdx.x; e < E; e += blockDim.x) s[e] = float(exp(double(lg[e]) - mx) / sum);
    } else {
      for (int64_t e = threadIdx.x; e < E; e += blockDim.x) s[e] = float(1.0 / (1.0 + exp(-double(lg[e]))));
    }
    for (int64_t e = threadIdx.x; e < E; e += blockDim.x) b[e] = s[e] + (p.bias ? p.bias[e] : 0.0f);
    __syncthreads();

    if (threadIdx.x == 0) {
      if (p.rule != ops::TopkRule::Greedy && p.n_group > 1) {
        const int64_t gsize = E / p.n_group;
        for (int64_t g = 0; g < p.n_group; ++g) {
          const float* grp = b + g * gsize;
          if (p.rule == ops::TopkRule::GroupMax) {
            float m = grp[0];
            for (int64_t i = 1; i < gsize; ++i) m = fmaxf(m, grp[i]);
            gscore[g] = m;
          } else {  // GroupTop2Sum: 0 + top1 + top2, in that order (ref's float sum)
            for (int64_t i = 0; i < gsize; ++i) used[i] = 0;
            float acc = 0.0f;
            for (int64_t j = 0; j < 2 && j < gsize; ++j) {
              const int64_t i = argmax_unused(grp, used, gsize);
              used[i] = 1;
              acc += grp[i];
            }
            gscore[g] = acc;
          }
        }
        for (int64_t g = 0; g < p.n_group; ++g) used[g] = 0;
        for (int64_t j = 0; j < p.topk_group; ++j) used[argmax_unused(gscore, used, p.n_group)] = 1;  // kept
        for (int64_t e = 0; e < E; ++e)
          if (!used[e / gsize]) b[e] = -INFINITY;
      }
      for (int64_t e = 0; e < E; ++e) used[e] = 0;
      int32_t* ids = p.ids + t * p.k;
      double wsum = 0.0;
      for (int64_t j = 0; j < p.k; ++j) {
        const int64_t e = argmax_unused(b, used, E);
        used[e] = 1;
        ids[j] = int32_t(e);
        wsum += s[e];
      }
      for (int64_t j = 0; j < p.k; ++j) {
        float w = s[ids[j]];
        if (p.norm_topk_prob) w = float(w / (wsum + 1e-20));
        if (!p.norm_topk_prob || p.scale_after_norm) w *= p.routed_scaling_factor;
        p.weights[t * p.k + j] = w;
      }
    }
    __syncthreads();  // s, b, mx, sum are rewritten for the next token
  }
}

}  // namespace

void launch_route(const ops::RouteParams& p, cudaStream_t s) {
  const size_t smem = size_t(2 * p.E + p.n_group) * sizeof(float) + size_t(std::max(p.E, p.n_group));
  allow_smem(reinterpret_cast<const void*>(&route_kernel), smem);
  route_kernel<<<unsigned(std::min<int64_t>(p.T, 65535)), 128, smem, s>>>(p);
  DS_CU_LAUNCHED();
}

}  // namespace ds::cuda
