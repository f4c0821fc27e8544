#pragma once
// Host entry point of the GPU decode attention over each stream's bf16 tail (the tokens of the page
// not sealed yet), the state that the paged kernels merge with their splits (device pointers).
#include <cuda_runtime.h>

#include <cstdint>

namespace ringkv {

// keys, values: device arrays of one device pointer per stream to [tokens[s]][128] bf16 rows (keys
// after RoPE; 16-byte aligned, read 8 channels at a time); tokens: device array of counts (0 to
// 127); queries [streams][n_queries][128] with n_queries 1, 2, 4 or 8; out [streams][n_queries][128],
// lse [streams][n_queries] (-inf for an empty tail).
void decode_attention_tails_gpu(const uint16_t* const* keys, const uint16_t* const* values, const int* tokens, int streams,
                                const float* queries, int n_queries, float scale, float* out, float* lse,
                                cudaStream_t stream);

// The streams' tails as the paged decode kernels take them (keys null: no tails).
struct TailsGpu {
  const uint16_t* const* keys;
  const uint16_t* const* values;
  const int* tokens;
};

// The last steps of the paged decode kernels: the tails (where given; head_dim 128) attended into
// the state slot after the `splits` states of the sealed pages, then every query's states merged
// into out [streams][n_queries][head_dim] and lse [streams][n_queries].
void merge_splits_and_tails_gpu(int splits, const TailsGpu& tails, int streams, const float* queries, int n_queries, int head_dim,
                                float scale, float* split_out, float* split_lse, float* out, float* lse, cudaStream_t stream);

}  // namespace ringkv
