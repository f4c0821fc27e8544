#pragma once
// The sum or the max of one value per thread over a block, every thread getting the result.
#include <cuda_runtime.h>

namespace ringkv::kernels {

// partial: THREADS / 32 floats of shared scratch; every thread of the block must call it.
template <bool MAX, int THREADS>
__device__ inline float block_reduce(float v, float* partial) {
  for (int o = 16; o > 0; o >>= 1) {
    const float other = __shfl_xor_sync(0xffffffffu, v, o);
    v = MAX ? fmaxf(v, other) : v + other;
  }
  __syncthreads();  // earlier readers of partial are done
  if ((threadIdx.x & 31) == 0) partial[threadIdx.x >> 5] = v;
  __syncthreads();
  float r = partial[0];
  for (int w = 1; w < THREADS / 32; ++w) r = MAX ? fmaxf(r, partial[w]) : r + partial[w];
  return r;
}

}  // namespace ringkv::kernels
