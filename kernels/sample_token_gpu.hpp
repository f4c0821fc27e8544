#pragma once
// Host entry point of the GPU token sampler (device pointers).
#include <cuda_runtime.h>

#include <cstdint>

namespace ringkv {

// *out (device): the token sample_token_cpu (kernels/sample_token.hpp) chooses from logits[n]
// (unless a probability rounds to another float on the GPU), or -1 where the logits hold NaN or
// infinity.
void sample_token_gpu(const float* logits, int n, float temperature, float top_p, double u, int32_t* out, cudaStream_t stream);

}  // namespace ringkv
