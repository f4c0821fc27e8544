#pragma once
// Host entry point of the GPU causal prefill attention (device pointers; layouts and meaning as in
// prefill_attention_cpu). head_dim 64 or 128; rows must be 16-byte aligned.
#include <cuda_runtime.h>

#include "kernels/prefill_attention.hpp"

namespace ringkv {

void prefill_attention_gpu(const PrefillShape& shape, const uint16_t* q, const uint16_t* k, const uint16_t* v, float* out,
                           float* lse, cudaStream_t stream);

}  // namespace ringkv
