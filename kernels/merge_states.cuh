#pragma once
// Merge of partial attention states (out, lse) on the GPU: one block per query, one thread per
// channel group. The CPU twin is merge_states_cpu in attention_state.cpp.
#include <cuda_runtime.h>

#include <cmath>

namespace ringkv::kernels {

// outs: [n_states][n_queries][HEAD_DIM], lses: [n_states][n_queries].
template <int HEAD_DIM>
__global__ void merge_states_kernel(int n_states, int n_queries, const float* __restrict__ outs,
                                    const float* __restrict__ lses, float* __restrict__ merged_out,
                                    float* __restrict__ merged_lse) {
  const int q = blockIdx.x;
  float m = -INFINITY;
  for (int s = 0; s < n_states; ++s) m = fmaxf(m, lses[static_cast<size_t>(s) * n_queries + q]);
  float denom = 0.0f;
  if (m != -INFINITY)
    for (int s = 0; s < n_states; ++s) denom += __expf(lses[static_cast<size_t>(s) * n_queries + q] - m);
  for (int c = threadIdx.x; c < HEAD_DIM; c += blockDim.x) {
    float acc = 0.0f;
    if (m != -INFINITY)
      for (int s = 0; s < n_states; ++s) {
        const size_t row = static_cast<size_t>(s) * n_queries + q;
        const float w = __expf(lses[row] - m);
        if (w > 0.0f) acc += w * outs[row * HEAD_DIM + c];
      }
    merged_out[static_cast<size_t>(q) * HEAD_DIM + c] = m == -INFINITY ? 0.0f : acc / denom;
  }
  if (threadIdx.x == 0) merged_lse[q] = m == -INFINITY ? -INFINITY : m + logf(denom);
}

}  // namespace ringkv::kernels
