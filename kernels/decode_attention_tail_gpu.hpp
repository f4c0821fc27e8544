#pragma once
// Host entry point of the GPU decode attention over each stream's bf16 tail (the tokens of the page
// not sealed yet), the state that the paged kernels merge with their splits (device pointers).
#include <cuda_runtime.h>

#include <cstdint>

namespace ringkv {

// keys, values: device arrays of one device pointer per stream to [tokens[s]][128] bf16 rows (keys
// after RoPE); tokens: device array of counts (0 to 127); queries [streams][n_queries][128] with
// n_queries 1, 2, 4 or 8; out [streams][n_queries][128], lse [streams][n_queries] (-inf for an
// empty tail).
void decode_attention_tails_gpu(const uint16_t* const* keys, const uint16_t* const* values, const int* tokens, int streams,
                                const float* queries, int n_queries, float scale, float* out, float* lse,
                                cudaStream_t stream);

}  // namespace ringkv
