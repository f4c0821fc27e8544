#pragma once
// Decode attention of one query per head over a bf16 KV cache laid out [tokens][kv_heads][head_dim]
// (keys after RoPE), flash-decoding style: blocks split the keys, each writes a partial (out, lse)
// per query head, and merge_states joins the splits. The GROUP query heads of a KV head share one
// pass over its keys. A key is read by LANES lanes, each holding HEAD_DIM / LANES channels of the
// key and value rows (whole 16-byte loads), so a warp covers 32 / LANES keys per step; each lane
// group keeps its own online-softmax state (log2 units) until the block merges them.
#include <cuda_runtime.h>

#include <cstdint>

namespace ringkv::kernels {

constexpr int kDecodeBf16Threads = 256;

// Eight bf16 in a 16-byte word, as floats.
__device__ inline void bf16x8_to_float(const uint4& w, float* out) {
  const uint32_t words[4] = {w.x, w.y, w.z, w.w};
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    out[2 * i] = __uint_as_float(words[i] << 16);
    out[2 * i + 1] = __uint_as_float(words[i] & 0xffff0000u);
  }
}

// Joins state (m_b, l_b, acc_b) into (m, l, acc): running max, sum of 2^(s - m), weighted values.
template <int N>
__device__ inline void join_state(float& m, float& l, float* acc, float m_b, float l_b, const float* acc_b) {
  const float top = fmaxf(m, m_b);
  if (top == -INFINITY) return;  // both empty
  const float a = exp2f(m - top), b = exp2f(m_b - top);
  l = l * a + l_b * b;
#pragma unroll
  for (int c = 0; c < N; ++c) acc[c] = acc[c] * a + acc_b[c] * b;
  m = top;
}

// grid: (kv_heads, splits); block: kDecodeBf16Threads. The key count is n_keys, or *device_keys
// where given (read on the device: one CUDA graph serves decode steps of different lengths).
// queries: fp32 [kv_heads * GROUP][HEAD_DIM];
// split_out: [splits][kv_heads * GROUP][HEAD_DIM], split_lse: [splits][kv_heads * GROUP] (natural log).
template <int HEAD_DIM, int GROUP>
__global__ void __launch_bounds__(kDecodeBf16Threads) decode_attention_bf16_kernel(
    const float* __restrict__ queries, const uint16_t* __restrict__ keys, const uint16_t* __restrict__ values, int n_keys,
    const int* __restrict__ device_keys, int kv_heads, float scale, float* __restrict__ split_out, float* __restrict__ split_lse) {
  constexpr int kLanes = GROUP * HEAD_DIM >= 512 ? 16 : 8;  // more lanes per key: fewer registers per lane
  constexpr int kChannels = HEAD_DIM / kLanes, kWords = kChannels / 8, kKeysPerStep = 32 / kLanes;
  constexpr int kWarps = kDecodeBf16Threads / 32;
  constexpr float kLog2e = 1.4426950408889634f;
  __shared__ float m_s[kWarps][GROUP], l_s[kWarps][GROUP];
  __shared__ float acc_s[kWarps][GROUP][HEAD_DIM];
  const int kv_head = blockIdx.x, split = blockIdx.y, heads = kv_heads * GROUP;
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, slot = lane / kLanes, part = lane % kLanes;
  if (device_keys) n_keys = *device_keys;
  const int keys_per_split = (n_keys + gridDim.y - 1) / gridDim.y;
  const int begin = split * keys_per_split, end = min(n_keys, begin + keys_per_split);

  float q[GROUP][kChannels], m[GROUP], l[GROUP], acc[GROUP][kChannels];
#pragma unroll
  for (int g = 0; g < GROUP; ++g) {
    const float* qg = queries + static_cast<size_t>(kv_head * GROUP + g) * HEAD_DIM + part * kChannels;
#pragma unroll
    for (int c = 0; c < kChannels; ++c) q[g][c] = qg[c] * scale * kLog2e, acc[g][c] = 0.f;
    m[g] = -INFINITY, l[g] = 0.f;
  }
  const size_t row_stride = static_cast<size_t>(kv_heads) * HEAD_DIM;
  const size_t column = static_cast<size_t>(kv_head) * HEAD_DIM + part * kChannels;
  // Every lane runs every step (the shuffles need the whole warp); keys past the end are skipped.
  for (int j0 = begin + warp * kKeysPerStep; j0 < end; j0 += kWarps * kKeysPerStep) {
    const int j = j0 + slot;
    const bool valid = j < end;
    float k[kChannels], v[kChannels];
#pragma unroll
    for (int w = 0; w < kWords; ++w) {
      const uint4 kw = valid ? reinterpret_cast<const uint4*>(keys + j * row_stride + column)[w] : make_uint4(0, 0, 0, 0);
      const uint4 vw = valid ? reinterpret_cast<const uint4*>(values + j * row_stride + column)[w] : make_uint4(0, 0, 0, 0);
      bf16x8_to_float(kw, k + 8 * w);
      bf16x8_to_float(vw, v + 8 * w);
    }
#pragma unroll
    for (int g = 0; g < GROUP; ++g) {
      float s = 0.f;
#pragma unroll
      for (int c = 0; c < kChannels; ++c) s += q[g][c] * k[c];
#pragma unroll
      for (int o = kLanes / 2; o > 0; o >>= 1) s += __shfl_xor_sync(0xffffffffu, s, o);
      if (!valid) continue;
      const float top = fmaxf(m[g], s), a = exp2f(m[g] - top), p = exp2f(s - top);
      l[g] = l[g] * a + p;
#pragma unroll
      for (int c = 0; c < kChannels; ++c) acc[g][c] = acc[g][c] * a + p * v[c];
      m[g] = top;
    }
  }
  // The warp's lane groups (same channels, other keys) join, then the warps join through shared memory.
#pragma unroll
  for (int o = kLanes; o < 32; o <<= 1)
#pragma unroll
    for (int g = 0; g < GROUP; ++g) {
      float acc_b[kChannels];
#pragma unroll
      for (int c = 0; c < kChannels; ++c) acc_b[c] = __shfl_xor_sync(0xffffffffu, acc[g][c], o);
      const float m_b = __shfl_xor_sync(0xffffffffu, m[g], o), l_b = __shfl_xor_sync(0xffffffffu, l[g], o);
      join_state<kChannels>(m[g], l[g], acc[g], m_b, l_b, acc_b);
    }
  if (slot == 0)
#pragma unroll
    for (int g = 0; g < GROUP; ++g) {
      if (part == 0) m_s[warp][g] = m[g], l_s[warp][g] = l[g];
#pragma unroll
      for (int c = 0; c < kChannels; ++c) acc_s[warp][g][part * kChannels + c] = acc[g][c];
    }
  __syncthreads();
  for (int i = threadIdx.x; i < GROUP * HEAD_DIM; i += blockDim.x) {
    const int g = i / HEAD_DIM, c = i % HEAD_DIM;
    float top = -INFINITY;
    for (int w = 0; w < kWarps; ++w) top = fmaxf(top, m_s[w][g]);
    float sum = 0.f, out = 0.f;
    if (top != -INFINITY)
      for (int w = 0; w < kWarps; ++w) {
        const float f = exp2f(m_s[w][g] - top);
        sum += l_s[w][g] * f, out += acc_s[w][g][c] * f;
      }
    const size_t row = static_cast<size_t>(split) * heads + kv_head * GROUP + g;
    split_out[row * HEAD_DIM + c] = sum > 0.f ? out / sum : 0.f;
    if (c == 0) split_lse[row] = sum > 0.f ? (top + log2f(sum)) / kLog2e : -INFINITY;
  }
}

}  // namespace ringkv::kernels
