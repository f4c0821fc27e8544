#pragma once
// CUDA twins of kernels/transformer_ops.cpp: RMSNorm (one block per row), RoPE over the heads of
// each row (angles in double, as on the CPU), the SwiGLU product, the embedding lookup, bf16
// rounding.
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cmath>
#include <cstdint>

#include "kernels/block_reduce.cuh"

namespace ringkv::kernels {

constexpr int kRowThreads = 256;

// grid: n rows; block: kRowThreads. out: bf16, the input of the GEMM that follows every norm.
__global__ void __launch_bounds__(kRowThreads) rms_norm_kernel(const float* __restrict__ x, int dim,
                                                                const float* __restrict__ weight, float eps,
                                                                uint16_t* __restrict__ out) {
  __shared__ float warp_sums[kRowThreads / 32];
  const float* xi = x + static_cast<size_t>(blockIdx.x) * dim;
  float sum = 0.f;
  // Unrolled so that several loads are in flight: one block per row, so latency bounds it.
#pragma unroll 4
  for (int c = threadIdx.x; c < dim; c += blockDim.x) sum += xi[c] * xi[c];
  const float total = block_reduce<false, kRowThreads>(sum, warp_sums);
  const float inv = 1.0f / sqrtf(total / static_cast<float>(dim) + eps);
  uint16_t* oi = out + static_cast<size_t>(blockIdx.x) * dim;
#pragma unroll 4
  for (int c = threadIdx.x; c < dim; c += blockDim.x) oi[c] = __bfloat16_as_ushort(__float2bfloat16_rn(weight[c] * (xi[c] * inv)));
}

// grid: n rows; block: one thread per (head, channel pair), strided. Positions are read on the
// device, so a decode step's launch is the same from token to token (a CUDA graph replays it).
__global__ void rope_heads_kernel(float* __restrict__ x, size_t row_stride, int heads, int head_dim,
                                  const int* __restrict__ positions, const float* __restrict__ inv_freq) {
  const int half = head_dim / 2, i = blockIdx.x;
  const double position = static_cast<double>(positions[i]);
  for (int w = threadIdx.x; w < heads * half; w += blockDim.x) {
    const int h = w / half, k = w % half;
    double s, c;
    sincos(position * static_cast<double>(inv_freq[k]), &s, &c);
    float* v = x + static_cast<size_t>(i) * row_stride + static_cast<size_t>(h) * head_dim;
    const float a = v[k], b = v[k + half], fc = static_cast<float>(c), fs = static_cast<float>(s);
    v[k] = a * fc - b * fs;
    v[k + half] = b * fc + a * fs;
  }
}

// A grid-stride loop over n elements.
template <class F>
__device__ inline void for_each_element(size_t n, F&& f) {
  for (size_t i = blockIdx.x * static_cast<size_t>(blockDim.x) + threadIdx.x; i < n; i += static_cast<size_t>(gridDim.x) * blockDim.x)
    f(i);
}

__global__ void silu_mul_kernel(float* __restrict__ gate, const float* __restrict__ up, size_t n) {
  for_each_element(n, [&](size_t i) { gate[i] = gate[i] / (1.0f + expf(-gate[i])) * up[i]; });
}

// grid: n rows; block: kRowThreads.
__global__ void __launch_bounds__(kRowThreads) embed_rows_kernel(const uint16_t* __restrict__ table,
                                                                  const int32_t* __restrict__ ids, int dim,
                                                                  float* __restrict__ out) {
  const uint16_t* row = table + static_cast<size_t>(ids[blockIdx.x]) * dim;
  float* o = out + static_cast<size_t>(blockIdx.x) * dim;
  for (int c = threadIdx.x; c < dim; c += blockDim.x) o[c] = __uint_as_float(static_cast<uint32_t>(row[c]) << 16);
}

__global__ void to_bf16_kernel(const float* __restrict__ x, size_t n, uint16_t* __restrict__ out) {
  for_each_element(n, [&](size_t i) { out[i] = __bfloat16_as_ushort(__float2bfloat16_rn(x[i])); });
}

__global__ void from_bf16_kernel(const uint16_t* __restrict__ x, size_t n, float* __restrict__ out) {
  for_each_element(n, [&](size_t i) { out[i] = __uint_as_float(static_cast<uint32_t>(x[i]) << 16); });
}

// grid: heads; block: head_dim threads (at most 1024).
__global__ void store_rows_bf16_kernel(const float* __restrict__ rows, int head_dim, const int* __restrict__ position, int wrap,
                                       uint16_t* __restrict__ dst, size_t head_stride, size_t row_stride,
                                       int* __restrict__ lengths) {
  const int h = blockIdx.x, row = *position % wrap;
  const float value = rows[static_cast<size_t>(h) * head_dim + threadIdx.x];
  dst[h * head_stride + row * row_stride + threadIdx.x] = __bfloat16_as_ushort(__float2bfloat16_rn(value));
  if (lengths && threadIdx.x == 0) lengths[h] = row + 1;
}

}  // namespace ringkv::kernels
