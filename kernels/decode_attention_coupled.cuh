#pragma once
// Decode attention over Coupled-Quantization pages on the GPU, with per-query lookup tables as the
// CQ paper computes it: for each query, the dot products of each channel group with its 2^bits
// key centroids go into a table in shared memory, so a key's score is a sum of one table entry per
// group; the probabilities are summed per (group, value centroid), and one product with the value
// centroids gives the output. Pages hold tokens x groups codes of `bits` bits, row-major, packed
// LSB-first (kvstore/codec_coupled.cpp). Blocks split the pages; merge_states joins the splits.
// The CPU twin is partial_attention through CoupledCodec.
#include <cuda_runtime.h>

#include <cstdint>

namespace ringkv::kernels {

constexpr int kCoupledThreads = 256;

struct CoupledKernelParams {
  const uint8_t* const* key_pages;        // [streams][n_pages]
  const uint8_t* const* value_pages;      // [streams][n_pages]
  const float* const* key_centroids;      // [streams] -> [groups][codes][channels]
  const float* const* value_centroids;    // [streams]
  int n_pages, page_tokens, pages_per_split, head_dim;
  int key_channels, key_bits, value_channels, value_bits;
};

// The index-th code of `bits` bits, LSB-first, reading only the bytes that hold it (as read_code).
__device__ inline uint32_t coupled_code(const uint8_t* packed, int index, int bits) {
  const int bit = index * bits, byte = bit >> 3, shift = bit & 7, need = (shift + bits + 7) >> 3;
  uint32_t word = 0;
  for (int i = 0; i < need; ++i) word |= static_cast<uint32_t>(packed[byte + i]) << (8 * i);
  return (word >> shift) & ((1u << bits) - 1u);
}

// The block's max (or sum) of v; scratch: kCoupledThreads / 32 floats.
template <bool MAX>
__device__ inline float coupled_block_reduce(float v, float* scratch) {
  for (int o = 16; o > 0; o >>= 1) {
    const float other = __shfl_xor_sync(0xffffffffu, v, o);
    v = MAX ? fmaxf(v, other) : v + other;
  }
  __syncthreads();
  if ((threadIdx.x & 31) == 0) scratch[threadIdx.x >> 5] = v;
  __syncthreads();
  float r = scratch[0];
  for (int w = 1; w < kCoupledThreads / 32; ++w) r = MAX ? fmaxf(r, scratch[w]) : r + scratch[w];
  return r;
}

// grid: (splits, streams); block: kCoupledThreads; dynamic shared memory: the key table, the value
// masses, the split's scores and a reduction scratch (coupled_shared_floats). queries: post-RoPE
// [streams][n_queries][head_dim]; split_out [splits][streams][n_queries][head_dim], split_lse
// [splits][streams][n_queries] (natural log).
__global__ void __launch_bounds__(kCoupledThreads) decode_attention_coupled_kernel(
    CoupledKernelParams p, const float* __restrict__ queries, int n_queries, float scale, float* __restrict__ split_out,
    float* __restrict__ split_lse) {
  constexpr float kLog2e = 1.4426950408889634f;
  extern __shared__ float shared[];
  const int split = blockIdx.x, stream = blockIdx.y, streams = gridDim.y, tid = threadIdx.x;
  const int key_groups = p.head_dim / p.key_channels, key_codes = 1 << p.key_bits;
  const int value_groups = p.head_dim / p.value_channels, value_codes = 1 << p.value_bits;
  float* table = shared;                                   // [key_groups][key_codes]
  float* mass = table + key_groups * key_codes;            // [value_groups][value_codes]
  float* scores = mass + value_groups * value_codes;       // [pages_per_split * page_tokens]
  float* scratch = scores + p.pages_per_split * p.page_tokens;
  const int first_page = split * p.pages_per_split, last_page = min(first_page + p.pages_per_split, p.n_pages);
  const int n_keys = max(0, last_page - first_page) * p.page_tokens;
  const uint8_t* const* key_pages = p.key_pages + static_cast<size_t>(stream) * p.n_pages;
  const uint8_t* const* value_pages = p.value_pages + static_cast<size_t>(stream) * p.n_pages;
  const float* key_centroids = p.key_centroids[stream];
  const float* value_centroids = p.value_centroids[stream];
  for (int q = 0; q < n_queries; ++q) {
    const float* query = queries + (static_cast<size_t>(stream) * n_queries + q) * p.head_dim;
    __syncthreads();  // the previous query's table and masses are read
    for (int i = tid; i < key_groups * key_codes; i += blockDim.x) {
      const int g = i / key_codes;
      const float* c = key_centroids + static_cast<size_t>(i) * p.key_channels;
      float s = 0.f;
      for (int j = 0; j < p.key_channels; ++j) s += query[g * p.key_channels + j] * c[j];
      table[i] = s * scale * kLog2e;
    }
    for (int i = tid; i < value_groups * value_codes; i += blockDim.x) mass[i] = 0.f;
    __syncthreads();
    float top = -INFINITY;
    for (int t = tid; t < n_keys; t += blockDim.x) {
      const uint8_t* page = key_pages[first_page + t / p.page_tokens];
      const int row = t % p.page_tokens;
      float s = 0.f;
      for (int g = 0; g < key_groups; ++g) s += table[g * key_codes + coupled_code(page, row * key_groups + g, p.key_bits)];
      scores[t] = s;
      top = fmaxf(top, s);
    }
    top = coupled_block_reduce<true>(top, scratch);
    float sum = 0.f;
    for (int t = tid; t < n_keys; t += blockDim.x) {
      const float prob = exp2f(scores[t] - top);
      sum += prob;
      const uint8_t* page = value_pages[first_page + t / p.page_tokens];
      const int row = t % p.page_tokens;
      for (int g = 0; g < value_groups; ++g)
        atomicAdd(&mass[g * value_codes + coupled_code(page, row * value_groups + g, p.value_bits)], prob);
    }
    sum = coupled_block_reduce<false>(sum, scratch);
    __syncthreads();  // every mass is in
    const size_t out_row = (static_cast<size_t>(split) * streams + stream) * n_queries + q;
    for (int c = tid; c < p.head_dim; c += blockDim.x) {
      const int g = c / p.value_channels, j = c % p.value_channels;
      const float* centroid = value_centroids + static_cast<size_t>(g) * value_codes * p.value_channels + j;
      float acc = 0.f;
      for (int k = 0; k < value_codes; ++k) acc += mass[g * value_codes + k] * centroid[static_cast<size_t>(k) * p.value_channels];
      split_out[out_row * p.head_dim + c] = sum > 0.f ? acc / sum : 0.f;
    }
    if (tid == 0) split_lse[out_row] = sum > 0.f ? (top + log2f(sum)) / kLog2e : -INFINITY;
  }
}

}  // namespace ringkv::kernels
