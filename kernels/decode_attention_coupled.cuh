#pragma once
// Decode attention over Coupled-Quantization pages on the GPU, with per-query lookup tables as the
// CQ paper computes it: the dot products of each channel group of the queries with that group's
// 2^bits key centroids go into a table in shared memory, so a key's score is a sum of one table
// entry per group; the probabilities are summed per (group, value centroid), and one product with
// the value centroids gives the output. Pages hold tokens x groups codes of `bits` bits,
// row-major, packed LSB-first (kvstore/codec_coupled.cpp), each page 4-byte aligned.
//
// A block takes one stream (a layer's KV head) and one split of its pages, and QP of the queries
// that share the KV head at once (table entries and masses hold QP values side by side, so one
// code lookup serves them all). Keys go in tiles: the tile's scores in shared memory, its maximum
// joined to the running one (the masses rescaled when it rises), then its probabilities added to
// the masses. merge_states joins the splits. The CPU twin is partial_attention through CoupledCodec.
#include <cuda_runtime.h>

#include <cstdint>

namespace ringkv::kernels {

constexpr int kCoupledThreads = 512, kCoupledTileKeys = 2048;

struct CoupledKernelParams {
  const uint8_t* const* key_pages;        // [streams][n_pages]
  const uint8_t* const* value_pages;      // [streams][n_pages]
  const float* const* key_centroids;      // [streams] -> [groups][codes][channels]
  const float* const* value_centroids;    // [streams]
  int n_pages, page_tokens, pages_per_split, head_dim;
  int key_channels, key_bits, value_channels, value_bits;
};

// Shared memory floats of a block taking QP queries at once: the queries, the key table, the value
// masses, a tile's scores and a reduction scratch.
inline size_t coupled_shared_floats(const CoupledKernelParams& p, int qp) {
  const size_t key_table = static_cast<size_t>(p.head_dim / p.key_channels) << p.key_bits;
  const size_t value_mass = static_cast<size_t>(p.head_dim / p.value_channels) << p.value_bits;
  return qp * (p.head_dim + key_table + value_mass + kCoupledTileKeys + kCoupledThreads / 32);
}

// The index-th code of `bits` (at most 16) bits, LSB-first, from the page's 32-bit words.
__device__ inline uint32_t coupled_code(const uint8_t* page, int index, int bits) {
  const uint32_t* words = reinterpret_cast<const uint32_t*>(page);
  const int bit = index * bits, w = bit >> 5, shift = bit & 31;
  uint32_t v = __ldg(words + w) >> shift;
  if (shift + bits > 32) v |= __ldg(words + w + 1) << (32 - shift);
  return v & ((1u << bits) - 1u);
}

// QP consecutive floats of shared memory (16-, 8- or 4-byte aligned) in one load.
template <int QP>
__device__ inline void load_queries_row(const float* at, float (&v)[QP]) {
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

// The block's max (or sum) of each of v's QP values, on every thread; scratch: QP floats per warp.
template <int QP, bool MAX>
__device__ inline void coupled_block_reduce(float (&v)[QP], float* scratch) {
#pragma unroll
  for (int q = 0; q < QP; ++q)
    for (int o = 16; o > 0; o >>= 1) {
      const float other = __shfl_xor_sync(0xffffffffu, v[q], o);
      v[q] = MAX ? fmaxf(v[q], other) : v[q] + other;
    }
  __syncthreads();  // the scratch's previous readers are done
  if ((threadIdx.x & 31) == 0)
#pragma unroll
    for (int q = 0; q < QP; ++q) scratch[(threadIdx.x >> 5) * QP + q] = v[q];
  __syncthreads();
#pragma unroll
  for (int q = 0; q < QP; ++q) {
    float r = scratch[q];
    for (int w = 1; w < kCoupledThreads / 32; ++w) r = MAX ? fmaxf(r, scratch[w * QP + q]) : r + scratch[w * QP + q];
    v[q] = r;
  }
}

// grid: (splits, streams); block: kCoupledThreads; dynamic shared memory: coupled_shared_floats.
// queries: post-RoPE [streams][n_queries][head_dim]; split_out [splits][streams][n_queries][head_dim],
// split_lse [splits][streams][n_queries] (natural log).
template <int QP>
__global__ void __launch_bounds__(kCoupledThreads) decode_attention_coupled_kernel(
    CoupledKernelParams p, const float* __restrict__ queries, int n_queries, float scale, float* __restrict__ split_out,
    float* __restrict__ split_lse) {
  constexpr float kLog2e = 1.4426950408889634f;
  extern __shared__ __align__(16) float shared[];
  const int split = blockIdx.x, stream = blockIdx.y, streams = gridDim.y, tid = threadIdx.x;
  const int key_groups = p.head_dim / p.key_channels, key_codes = 1 << p.key_bits;
  const int value_groups = p.head_dim / p.value_channels, value_codes = 1 << p.value_bits;
  const int key_entries = key_groups * key_codes, value_entries = value_groups * value_codes;
  float* table = shared;                                  // [key_groups][key_codes][QP]
  float* mass = table + key_entries * QP;                 // [value_groups][value_codes][QP]
  float* scores = mass + value_entries * QP;              // [kCoupledTileKeys][QP]
  float* query_s = scores + kCoupledTileKeys * QP;        // [QP][head_dim], in log2 units
  float* scratch = query_s + QP * p.head_dim;             // [warps][QP]
  const int first_page = split * p.pages_per_split, last_page = min(first_page + p.pages_per_split, p.n_pages);
  const int first_key = first_page * p.page_tokens, end_key = max(first_page, last_page) * p.page_tokens;
  const uint8_t* const* key_pages = p.key_pages + static_cast<size_t>(stream) * p.n_pages;
  const uint8_t* const* value_pages = p.value_pages + static_cast<size_t>(stream) * p.n_pages;
  const float* key_centroids = p.key_centroids[stream];
  const float* value_centroids = p.value_centroids[stream];

  for (int q0 = 0; q0 < n_queries; q0 += QP) {
    __syncthreads();  // the previous pass's tables and masses are read
    for (int i = tid; i < QP * p.head_dim; i += blockDim.x) {
      const int q = q0 + i / p.head_dim;
      query_s[i] = q < n_queries ? queries[(static_cast<size_t>(stream) * n_queries + q) * p.head_dim + i % p.head_dim] *
                                       scale * kLog2e
                                 : 0.f;
    }
    __syncthreads();
    for (int i = tid; i < key_entries; i += blockDim.x) {
      const int g = i / key_codes;
      const float* c = key_centroids + static_cast<size_t>(i) * p.key_channels;
      float s[QP] = {};
      for (int j = 0; j < p.key_channels; ++j) {
        const float cj = c[j];
#pragma unroll
        for (int q = 0; q < QP; ++q) s[q] += query_s[q * p.head_dim + g * p.key_channels + j] * cj;
      }
#pragma unroll
      for (int q = 0; q < QP; ++q) table[i * QP + q] = s[q];
    }
    for (int i = tid; i < value_entries * QP; i += blockDim.x) mass[i] = 0.f;
    float top[QP], sum[QP];  // the running maximum (the same on every thread) and this thread's part of the sum
#pragma unroll
    for (int q = 0; q < QP; ++q) top[q] = -INFINITY, sum[q] = 0.f;
    __syncthreads();

    for (int tile = first_key; tile < end_key; tile += kCoupledTileKeys) {
      const int n = min(kCoupledTileKeys, end_key - tile);
      float tile_top[QP];
#pragma unroll
      for (int q = 0; q < QP; ++q) tile_top[q] = -INFINITY;
      for (int t = tid; t < n; t += blockDim.x) {
        const int key = tile + t, row = key % p.page_tokens;
        const uint8_t* page = key_pages[key / p.page_tokens];
        float s[QP] = {};
        for (int g = 0; g < key_groups; ++g) {
          float v[QP];
          load_queries_row<QP>(table + (g * key_codes + coupled_code(page, row * key_groups + g, p.key_bits)) * QP, v);
#pragma unroll
          for (int q = 0; q < QP; ++q) s[q] += v[q];
        }
#pragma unroll
        for (int q = 0; q < QP; ++q) scores[t * QP + q] = s[q], tile_top[q] = fmaxf(tile_top[q], s[q]);
      }
      coupled_block_reduce<QP, true>(tile_top, scratch);  // also makes the tile's scores visible
      bool rises = false;
      float alpha[QP];
#pragma unroll
      for (int q = 0; q < QP; ++q) {
        const float next = fmaxf(top[q], tile_top[q]);
        alpha[q] = top[q] == -INFINITY ? 0.f : exp2f(top[q] - next);
        rises |= top[q] != -INFINITY && next > top[q];
        top[q] = next, sum[q] *= alpha[q];
      }
      if (rises) {  // the same on every thread: the masses move to the new maximum
        for (int i = tid; i < value_entries; i += blockDim.x)
#pragma unroll
          for (int q = 0; q < QP; ++q) mass[i * QP + q] *= alpha[q];
        __syncthreads();
      }
      for (int t = tid; t < n; t += blockDim.x) {
        const int key = tile + t, row = key % p.page_tokens;
        const uint8_t* page = value_pages[key / p.page_tokens];
        float prob[QP];
#pragma unroll
        for (int q = 0; q < QP; ++q) prob[q] = exp2f(scores[t * QP + q] - top[q]), sum[q] += prob[q];
        for (int g = 0; g < value_groups; ++g) {
          float* at = mass + (g * value_codes + coupled_code(page, row * value_groups + g, p.value_bits)) * QP;
#pragma unroll
          for (int q = 0; q < QP; ++q) atomicAdd(at + q, prob[q]);
        }
      }
      __syncthreads();  // the masses are in and the scores may be overwritten
    }
    coupled_block_reduce<QP, false>(sum, scratch);

    for (int i = tid; i < QP * p.head_dim; i += blockDim.x) {
      const int q = i / p.head_dim, c = i % p.head_dim;
      if (q0 + q >= n_queries) continue;
      const int g = c / p.value_channels, j = c % p.value_channels;
      const float* centroid = value_centroids + static_cast<size_t>(g) * value_codes * p.value_channels + j;
      const float* m = mass + static_cast<size_t>(g) * value_codes * QP + q;
      float acc = 0.f;
      for (int k = 0; k < value_codes; ++k) acc += m[k * QP] * centroid[static_cast<size_t>(k) * p.value_channels];
      const size_t out_row = (static_cast<size_t>(split) * streams + stream) * n_queries + q0 + q;
      split_out[out_row * p.head_dim + c] = sum[q] > 0.f ? acc / sum[q] : 0.f;
    }
    if (tid < QP && q0 + tid < n_queries) {
      float l = 0.f, m = 0.f;
#pragma unroll
      for (int q = 0; q < QP; ++q)
        if (q == tid) l = sum[q], m = top[q];
      split_lse[(static_cast<size_t>(split) * streams + stream) * n_queries + q0 + tid] =
          l > 0.f ? (m + log2f(l)) / kLog2e : -INFINITY;
    }
  }
}

}  // namespace ringkv::kernels
