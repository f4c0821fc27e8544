#pragma once
// Merge of partial attention states (out, lse) on the GPU: one block per query. The CPU twin is
// merge_states_cpu in attention_state.cpp.
#include <cuda_runtime.h>

#include <cmath>

#include "kernels/block_reduce.cuh"

namespace ringkv::kernels {

constexpr int kMergeThreads = 128;

// grid: n_queries; block: kMergeThreads. outs: [n_states][n_queries][HEAD_DIM] (HEAD_DIM a multiple
// of 32), lses: [n_states][n_queries]. The largest lse and the sum of exps over the states spread
// across the threads; then each warp sums every fourth state's output, a lane holding channels 32
// apart, with the loads of several states in flight (latency, not bytes, bounds a merge).
template <int HEAD_DIM>
__global__ void __launch_bounds__(kMergeThreads) merge_states_kernel(int n_states, int n_queries,
                                                                      const float* __restrict__ outs,
                                                                      const float* __restrict__ lses,
                                                                      float* __restrict__ merged_out,
                                                                      float* __restrict__ merged_lse) {
  constexpr int kWarps = kMergeThreads / 32, kPerLane = HEAD_DIM / 32;
  __shared__ float partial[kWarps];
  __shared__ float acc_s[kWarps][HEAD_DIM];
  const int q = blockIdx.x, lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  float m = -INFINITY;
  for (int s = threadIdx.x; s < n_states; s += kMergeThreads) m = fmaxf(m, lses[static_cast<size_t>(s) * n_queries + q]);
  m = block_reduce<true, kMergeThreads>(m, partial);
  float* out = merged_out + static_cast<size_t>(q) * HEAD_DIM;
  if (m == -INFINITY) {  // no keys in any state
    for (int c = threadIdx.x; c < HEAD_DIM; c += kMergeThreads) out[c] = 0.0f;
    if (threadIdx.x == 0) merged_lse[q] = -INFINITY;
    return;
  }
  float denom = 0.0f;
  for (int s = threadIdx.x; s < n_states; s += kMergeThreads) denom += __expf(lses[static_cast<size_t>(s) * n_queries + q] - m);
  denom = block_reduce<false, kMergeThreads>(denom, partial);
  float acc[kPerLane];
#pragma unroll
  for (int j = 0; j < kPerLane; ++j) acc[j] = 0.0f;
#pragma unroll 4
  for (int s = warp; s < n_states; s += kWarps) {
    const size_t row = static_cast<size_t>(s) * n_queries + q;
    const float w = __expf(lses[row] - m);
    const float* o = outs + row * HEAD_DIM + lane;
#pragma unroll
    for (int j = 0; j < kPerLane; ++j) acc[j] += w > 0.0f ? w * o[32 * j] : 0.0f;  // an empty state's out may be anything
  }
#pragma unroll
  for (int j = 0; j < kPerLane; ++j) acc_s[warp][lane + 32 * j] = acc[j];
  __syncthreads();
  for (int c = threadIdx.x; c < HEAD_DIM; c += kMergeThreads) {
    float sum = 0.0f;
#pragma unroll
    for (int w = 0; w < kWarps; ++w) sum += acc_s[w][c];
    out[c] = sum / denom;
  }
  if (threadIdx.x == 0) merged_lse[q] = m + logf(denom);
}

}  // namespace ringkv::kernels
