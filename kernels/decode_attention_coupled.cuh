#pragma once
// Decode attention over Coupled-Quantization pages on the GPU. Keys through per-query lookup
// tables, as the CQ paper computes them: the dot products of each channel group of the queries with
// that group's 2^bits key centroids go into a table in shared memory, so a key's score is a sum of
// one table entry per group. Values from their centroids, also in shared memory: each lane of a
// warp owns D/32 output channels and adds, for every key, the probability times the centroid its
// code names. (Summing probabilities per centroid and multiplying once, as the paper does, needs
// shared-memory float atomics, which the GPU runs as compare-and-swap loops: ten times slower.)
//
// Pages hold tokens x groups codes of `bits` bits, row-major, packed LSB-first
// (kvstore/codec_coupled.cpp), each page 4-byte aligned. A block takes one stream (a layer's KV
// head), one split of its pages, and QP of the queries that share the KV head at once (table
// entries hold QP values side by side, so one lookup serves them all). Each warp takes 32 keys at a
// time, a key per lane for the scores, with an online softmax; the warps' states merge at the end,
// and merge_states joins the splits. The CPU twin is partial_attention through CoupledCodec.
#include <cuda_runtime.h>

#include <cstdint>

#include "kernels/fast_exp2.cuh"

namespace ringkv::kernels {

constexpr int kCoupledThreads = 512, kCoupledWarps = kCoupledThreads / 32;

struct CoupledKernelParams {
  const uint8_t* const* key_pages;        // [streams][n_pages]
  const uint8_t* const* value_pages;      // [streams][n_pages]
  const float* const* key_centroids;      // [streams] -> [groups][codes][channels]
  const float* const* value_centroids;    // [streams]
  int n_pages, page_tokens, pages_per_split, head_dim;
  int key_channels, key_bits, value_channels, value_bits;
};

// Shared memory floats of a block taking QP queries at once: the key table (or, after the keys,
// the warps' states), the value centroids and the queries.
inline size_t coupled_shared_floats(const CoupledKernelParams& p, int qp) {
  const size_t key_table = qp * (static_cast<size_t>(p.head_dim / p.key_channels) << p.key_bits);
  const size_t warp_states = static_cast<size_t>(kCoupledWarps) * qp * (p.head_dim + 2);
  const size_t value_centroids = static_cast<size_t>(p.head_dim) << p.value_bits;
  return (key_table > warp_states ? key_table : warp_states) + value_centroids + qp * p.head_dim;
}

// The index-th code of `bits` (at most 16) bits, LSB-first, from the page's 32-bit words.
__device__ inline uint32_t coupled_code(const uint8_t* page, int index, int bits) {
  const uint32_t* words = reinterpret_cast<const uint32_t*>(page);
  const int bit = index * bits, w = bit >> 5, shift = bit & 31;
  uint32_t v = __ldg(words + w) >> shift;
  if (shift + bits > 32) v |= __ldg(words + w + 1) << (32 - shift);
  return v & ((1u << bits) - 1u);
}

// QP consecutive floats of shared memory (aligned to their size) in one load.
template <int QP>
__device__ inline void load_row(const float* at, float (&v)[QP]) {
  if constexpr (QP == 4) {
    const float4 x = *reinterpret_cast<const float4*>(at);
    v[0] = x.x, v[1] = x.y, v[2] = x.z, v[3] = x.w;
  } else if constexpr (QP == 2) {
    const float2 x = *reinterpret_cast<const float2*>(at);
    v[0] = x.x, v[1] = x.y;
  } else {
    v[0] = *at;
  }
}

// grid: (splits, streams); block: kCoupledThreads; dynamic shared memory: coupled_shared_floats.
// queries: post-RoPE [streams][n_queries][D]; split_out [splits][streams][n_queries][D], split_lse
// [splits][streams][n_queries] (natural log). page_tokens is a multiple of 32.
template <int QP, int D>
__global__ void __launch_bounds__(kCoupledThreads, 1) decode_attention_coupled_kernel(
    CoupledKernelParams p, const float* __restrict__ queries, int n_queries, float scale, float* __restrict__ split_out,
    float* __restrict__ split_lse) {
  constexpr float kLog2e = 1.4426950408889634f;
  constexpr int kLaneChannels = D / 32;
  extern __shared__ __align__(16) float shared[];
  const int split = blockIdx.x, stream = blockIdx.y, streams = gridDim.y, tid = threadIdx.x;
  const int warp = tid / 32, lane = tid % 32;
  const int key_groups = D / p.key_channels, key_codes = 1 << p.key_bits;
  const int value_groups = D / p.value_channels, value_codes = 1 << p.value_bits, value_channels = p.value_channels;
  const int key_entries = key_groups * key_codes;
  const size_t table_floats = static_cast<size_t>(QP) * key_entries, states_floats = static_cast<size_t>(kCoupledWarps) * QP * (D + 2);
  float* table = shared;  // [key_groups][key_codes][QP]; after the keys, the warps' states
  float* value_centroid_s = table + (table_floats > states_floats ? table_floats : states_floats);  // [groups][codes][channels]
  float* query_s = value_centroid_s + static_cast<size_t>(D) * value_codes;                         // [QP][D], log2 units
  const int first_page = split * p.pages_per_split, last_page = min(first_page + p.pages_per_split, p.n_pages);
  const int first_key = first_page * p.page_tokens, end_key = max(first_page, last_page) * p.page_tokens;
  const uint8_t* const* key_pages = p.key_pages + static_cast<size_t>(stream) * p.n_pages;
  const uint8_t* const* value_pages = p.value_pages + static_cast<size_t>(stream) * p.n_pages;
  const float* key_centroids = p.key_centroids[stream];
  {
    const float* value_centroids = p.value_centroids[stream];
    for (int i = tid; i < D * value_codes; i += blockDim.x) value_centroid_s[i] = value_centroids[i];
  }
  // The value groups of this lane's channels (the first of them, and whether they share one group).
  const int first_channel = lane * kLaneChannels, lane_group = first_channel / value_channels;
  const bool one_group = first_channel % value_channels + kLaneChannels <= value_channels;

  for (int q0 = 0; q0 < n_queries; q0 += QP) {
    __syncthreads();  // the previous pass's states are read
    for (int i = tid; i < QP * D; i += blockDim.x) {
      const int q = q0 + i / D;
      query_s[i] = q < n_queries ? queries[(static_cast<size_t>(stream) * n_queries + q) * D + i % D] * scale * kLog2e : 0.f;
    }
    __syncthreads();
    for (int i = tid; i < key_entries; i += blockDim.x) {
      const int g = i / key_codes;
      const float* c = key_centroids + static_cast<size_t>(i) * p.key_channels;
      float s[QP] = {};
      for (int j = 0; j < p.key_channels; ++j) {
        const float cj = __ldg(c + j);
#pragma unroll
        for (int q = 0; q < QP; ++q) s[q] += query_s[q * D + g * p.key_channels + j] * cj;
      }
#pragma unroll
      for (int q = 0; q < QP; ++q) table[i * QP + q] = s[q];
    }
    __syncthreads();

    float top[QP], sum[QP], acc[QP][kLaneChannels];  // the warp's running maximum, this lane's part of the sum, its channels
#pragma unroll
    for (int q = 0; q < QP; ++q) {
      top[q] = -INFINITY, sum[q] = 0.f;
#pragma unroll
      for (int k = 0; k < kLaneChannels; ++k) acc[q][k] = 0.f;
    }
    for (int tile = first_key + warp * 32; tile < end_key; tile += kCoupledWarps * 32) {
      // 32 keys of one page: a key per lane for the scores.
      const int row0 = tile % p.page_tokens, row = row0 + lane;
      const uint8_t* key_page = key_pages[tile / p.page_tokens];
      float s[QP] = {};
#pragma unroll 4
      for (int g = 0; g < key_groups; ++g) {
        float v[QP];
        load_row<QP>(table + (g * key_codes + coupled_code(key_page, row * key_groups + g, p.key_bits)) * QP, v);
#pragma unroll
        for (int q = 0; q < QP; ++q) s[q] += v[q];
      }
      float prob[QP];
#pragma unroll
      for (int q = 0; q < QP; ++q) {
        float m = s[q];
        for (int o = 16; o > 0; o >>= 1) m = fmaxf(m, __shfl_xor_sync(0xffffffffu, m, o));
        const float next = fmaxf(top[q], m), alpha = fast_exp2(top[q] - next);  // 0 while nothing was seen
        top[q] = next;
        prob[q] = fast_exp2(s[q] - next);
        sum[q] = sum[q] * alpha + prob[q];
#pragma unroll
        for (int k = 0; k < kLaneChannels; ++k) acc[q][k] *= alpha;
      }
      // Every key's probability times its value centroids, on this lane's channels.
      const uint8_t* value_page = value_pages[tile / p.page_tokens];
#pragma unroll 4
      for (int j = 0; j < 32; ++j) {
        float pj[QP];
#pragma unroll
        for (int q = 0; q < QP; ++q) pj[q] = __shfl_sync(0xffffffffu, prob[q], j);
        const int code_row = (row0 + j) * value_groups;
        if (one_group) {
          const uint32_t code = coupled_code(value_page, code_row + lane_group, p.value_bits);
          const float* c = value_centroid_s + (static_cast<size_t>(lane_group) * value_codes + code) * value_channels +
                           first_channel % value_channels;
          float v[kLaneChannels];
          if constexpr (kLaneChannels == 4) {
            if (value_channels % 4 == 0) {  // 16-byte aligned: one load
              const float4 x = *reinterpret_cast<const float4*>(c);
              v[0] = x.x, v[1] = x.y, v[2] = x.z, v[3] = x.w;
            } else {
#pragma unroll
              for (int k = 0; k < kLaneChannels; ++k) v[k] = c[k];
            }
          } else {
#pragma unroll
            for (int k = 0; k < kLaneChannels; ++k) v[k] = c[k];
          }
#pragma unroll
          for (int q = 0; q < QP; ++q)
#pragma unroll
            for (int k = 0; k < kLaneChannels; ++k) acc[q][k] += pj[q] * v[k];
        } else {
#pragma unroll
          for (int k = 0; k < kLaneChannels; ++k) {
            const int channel = first_channel + k, g = channel / value_channels;
            const uint32_t code = coupled_code(value_page, code_row + g, p.value_bits);
            const float v = value_centroid_s[(static_cast<size_t>(g) * value_codes + code) * value_channels + channel % value_channels];
#pragma unroll
            for (int q = 0; q < QP; ++q) acc[q][k] += pj[q] * v;
          }
        }
      }
    }
#pragma unroll
    for (int q = 0; q < QP; ++q)
      for (int o = 16; o > 0; o >>= 1) sum[q] += __shfl_xor_sync(0xffffffffu, sum[q], o);

    // The warps' states (maximum, sum, channels) replace the key table, then merge per channel.
    __syncthreads();
    float* state = table + static_cast<size_t>(warp) * QP * (D + 2);  // [QP][top, sum, D channels]
#pragma unroll
    for (int q = 0; q < QP; ++q) {
      if (lane == 0) state[q * (D + 2)] = top[q], state[q * (D + 2) + 1] = sum[q];
#pragma unroll
      for (int k = 0; k < kLaneChannels; ++k) state[q * (D + 2) + 2 + first_channel + k] = acc[q][k];
    }
    __syncthreads();
    for (int i = tid; i < QP * D; i += blockDim.x) {
      const int q = i / D, c = i % D;
      if (q0 + q >= n_queries) continue;
      float m = -INFINITY;
      for (int w = 0; w < kCoupledWarps; ++w) m = fmaxf(m, table[(static_cast<size_t>(w) * QP + q) * (D + 2)]);
      float l = 0.f, o = 0.f;
      if (m != -INFINITY)
        for (int w = 0; w < kCoupledWarps; ++w) {
          const float* ws = table + (static_cast<size_t>(w) * QP + q) * (D + 2);
          const float weight = fast_exp2(ws[0] - m);
          l += ws[1] * weight, o += ws[2 + c] * weight;
        }
      const size_t out_row = (static_cast<size_t>(split) * streams + stream) * n_queries + q0 + q;
      split_out[out_row * D + c] = l > 0.f ? o / l : 0.f;
      if (c == 0) split_lse[out_row] = l > 0.f ? (m + log2f(l)) / kLog2e : -INFINITY;
    }
  }
}

}  // namespace ringkv::kernels
