#pragma once
// Decode attention over each stream's bf16 tail (the tokens of the page not yet sealed, keys after
// RoPE), one block per stream and one thread per tail token for the scores and per channel for
// the values. Its (out, lse) joins the states of the sealed pages in the merge. The CPU twin is
// partial_attention over a bf16 page (FloatCodec), as KVShard::attend does for its tail.
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstdint>

#include "kernels/block_reduce.cuh"

namespace ringkv::kernels {

constexpr int kTailThreads = 128;  // at most 127 tail tokens; head_dim 128

// grid: streams; block: kTailThreads. keys/values: per stream, [tokens[stream]][HEAD_DIM] bf16.
// out: [streams][NQ][HEAD_DIM], lse: [streams][NQ] (the split slot reserved for the tail).
template <int HEAD_DIM, int NQ>
__global__ void __launch_bounds__(kTailThreads) decode_attention_tail_kernel(
    const uint16_t* const* keys, const uint16_t* const* values, const int* tokens, const float* __restrict__ queries,
    float scale, float* __restrict__ out, float* __restrict__ lse) {
  static_assert(HEAD_DIM == kTailThreads, "one thread per channel");
  __shared__ float q_s[NQ][HEAD_DIM];
  __shared__ float probs_s[NQ][kTailThreads];
  __shared__ float partial[kTailThreads / 32];
  const int stream = blockIdx.x, tid = threadIdx.x, n = tokens[stream];
  for (int i = tid; i < NQ * HEAD_DIM; i += blockDim.x)
    q_s[i / HEAD_DIM][i % HEAD_DIM] = queries[static_cast<size_t>(stream) * NQ * HEAD_DIM + i];
  __syncthreads();
  const __nv_bfloat16* k = reinterpret_cast<const __nv_bfloat16*>(keys[stream]);
  const __nv_bfloat16* v = reinterpret_cast<const __nv_bfloat16*>(values[stream]);
  float s[NQ];
#pragma unroll
  for (int q = 0; q < NQ; ++q) s[q] = 0.f;
  if (tid < n) {  // the thread's key row in 16-byte loads, 8 channels each
    const uint4* row = reinterpret_cast<const uint4*>(k + tid * HEAD_DIM);
#pragma unroll 4
    for (int w = 0; w < HEAD_DIM / 8; ++w) {
      const uint4 bits = row[w];
      const __nv_bfloat162* pairs = reinterpret_cast<const __nv_bfloat162*>(&bits);
#pragma unroll
      for (int p = 0; p < 4; ++p) {
        const float2 x = __bfloat1622float2(pairs[p]);
        const int c = w * 8 + 2 * p;
#pragma unroll
        for (int q = 0; q < NQ; ++q) s[q] += q_s[q][c] * x.x, s[q] += q_s[q][c + 1] * x.y;
      }
    }
  }
  float m[NQ], l[NQ];
#pragma unroll
  for (int q = 0; q < NQ; ++q) {
    m[q] = block_reduce<true, kTailThreads>(tid < n ? s[q] * scale : -INFINITY, partial);
    const float e = tid < n ? __expf(s[q] * scale - m[q]) : 0.f;
    probs_s[q][tid] = e;
    l[q] = block_reduce<false, kTailThreads>(e, partial);
  }
  __syncthreads();
  float acc[NQ];
#pragma unroll
  for (int q = 0; q < NQ; ++q) acc[q] = 0.f;
#pragma unroll 8
  for (int t = 0; t < n; ++t) {
    const float x = __bfloat162float(v[t * HEAD_DIM + tid]);
#pragma unroll
    for (int q = 0; q < NQ; ++q) acc[q] += probs_s[q][t] * x;
  }
  const size_t row = static_cast<size_t>(stream) * NQ;
#pragma unroll
  for (int q = 0; q < NQ; ++q) {
    out[(row + q) * HEAD_DIM + tid] = n > 0 ? acc[q] / l[q] : 0.f;
    if (tid == 0) lse[row + q] = n > 0 ? m[q] + logf(l[q]) : -INFINITY;
  }
}

}  // namespace ringkv::kernels
