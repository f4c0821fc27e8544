#pragma once
// Host entry point of the GPU state merge (device pointers; same layout as merge_states_cpu).
#include <cuda_runtime.h>

namespace ringkv {

void merge_states_gpu(int n_states, int n_queries, int head_dim, const float* outs, const float* lses, float* merged_out,
                      float* merged_lse, cudaStream_t stream);

}  // namespace ringkv
