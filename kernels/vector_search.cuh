#pragma once
// What the nearest-centroid searches of the GPU encoders (CQ, RVQ) share: a vector of N floats
// loaded into registers, and its squared norm (fused multiply-adds in channel order).
#include <cuda_runtime.h>

namespace ringkv::kernels {

// N floats (16-byte aligned when N >= 4) into registers, through the read-only cache.
template <int N>
__device__ inline void load_vector(const float* c, float (&out)[N]) {
  if constexpr (N % 4 == 0) {
#pragma unroll
    for (int j = 0; j < N; j += 4) {
      const float4 v = __ldg(reinterpret_cast<const float4*>(c + j));
      out[j] = v.x, out[j + 1] = v.y, out[j + 2] = v.z, out[j + 3] = v.w;
    }
  } else {
#pragma unroll
    for (int j = 0; j < N; ++j) out[j] = __ldg(c + j);
  }
}

template <int N>
__device__ inline float squared_norm(const float (&c)[N]) {
  float norm = 0.f;
#pragma unroll
  for (int j = 0; j < N; ++j) norm = fmaf(c[j], c[j], norm);
  return norm;
}

}  // namespace ringkv::kernels
