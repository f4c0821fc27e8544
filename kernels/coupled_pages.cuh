#pragma once
// Encoding and decoding of full Coupled-Quantization pages on the GPU (layout of
// kvstore/codec_coupled.cpp: tokens x groups codes of `bits` bits, row-major, LSB-first).
// Encoding finds each group's nearest centroid as CoupledCodec does (squared norm of the centroid
// plus -2x.c summed in channel order with fused multiply-adds, the first index of least distance
// winning), then packs the codes word by word; where the channels and table allow, the search runs
// on tensor cores (kernels/centroid_search_mma.cuh). (With one channel per group the CPU searches
// sorted midpoints instead: an exact tie may go to another index of the same distance.) Decoding writes each group's centroid, rounded
// to bf16, into the rows prefill attends to.
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstdint>

#include "kernels/centroid_search_mma.cuh"
#include "kernels/pack_codes.cuh"
#include "kernels/vector_search.cuh"

namespace ringkv::kernels {

constexpr int kCoupledPageThreads = 256;

// Squared norms of the centroids go to shared memory where a block may hold them all (else each
// search computes them again).
constexpr size_t kCoupledNormsShared = 48 << 10;

__host__ __device__ inline size_t coupled_codes_shared_bytes(int tokens, int groups) {
  return ((static_cast<size_t>(tokens) * groups + 7) & ~size_t{7}) * sizeof(uint16_t);
}

// Shared memory bytes of the fp32 encoder: the codes of a page, then the squared norms of its
// centroids where they fit.
inline size_t encode_coupled_shared_bytes(int tokens, int head_dim, int channels, int bits) {
  const size_t groups = head_dim / channels, norms = (groups << bits) * sizeof(float);
  return coupled_codes_shared_bytes(tokens, groups) + (norms <= kCoupledNormsShared ? norms : 0);
}

// Shared memory bytes of the tensor-core encoder: the codes, then two staged group tables.
inline size_t encode_coupled_mma_shared_bytes(int tokens, int head_dim, int channels, int bits) {
  return coupled_codes_shared_bytes(tokens, head_dim / channels) + 2 * staged_centroid_bytes(channels, 1 << bits);
}

// grid: pages; block: kCoupledPageThreads; dynamic shared memory: encode_coupled_shared_bytes.
// rows: fp32 [pages][tokens][head_dim]; centroids: per page [groups][2^bits][CH]. A thread takes a
// token's group (its CH values in registers); a warp takes 32 tokens of one group, so that every
// centroid it reads is one broadcast load (from L1: a group's table is reread by every warp).
template <int CH>
__global__ void __launch_bounds__(kCoupledPageThreads) encode_coupled_pages_kernel(const float* __restrict__ rows, int tokens,
                                                                                   int head_dim, int bits,
                                                                                   const float* const* centroids,
                                                                                   uint8_t* const* page_bytes) {
  extern __shared__ __align__(16) uint16_t codes_s[];  // [tokens][groups], then the norms [groups][codes]
  const int page = blockIdx.x, groups = head_dim / CH, codes = 1 << bits, entries = groups * codes;
  const bool norms_shared = static_cast<size_t>(entries) * sizeof(float) <= kCoupledNormsShared;
  float* norms_s = reinterpret_cast<float*>(codes_s + ((tokens * groups + 7) & ~7));
  const float* table = centroids[page];
  if (norms_shared) {
    for (int e = threadIdx.x; e < entries; e += blockDim.x) {
      float c[CH];
      load_vector<CH>(table + static_cast<size_t>(e) * CH, c);
      norms_s[e] = squared_norm<CH>(c);
    }
    __syncthreads();
  }
  const float* page_rows = rows + static_cast<size_t>(page) * tokens * head_dim;
  for (int i = threadIdx.x; i < tokens * groups; i += blockDim.x) {
    const int g = i / tokens, t = i % tokens;
    float x2[CH];  // -2x
    load_vector<CH>(page_rows + static_cast<size_t>(t) * head_dim + g * CH, x2);
#pragma unroll
    for (int j = 0; j < CH; ++j) x2[j] *= -2.0f;
    const float* group_table = table + static_cast<size_t>(g) * codes * CH;
    float best = INFINITY;
    int arg = 0;
#pragma unroll 4
    for (int k = 0; k < codes; ++k) {
      float c[CH];
      load_vector<CH>(group_table + static_cast<size_t>(k) * CH, c);
      float d = norms_shared ? norms_s[g * codes + k] : squared_norm<CH>(c);
#pragma unroll
      for (int j = 0; j < CH; ++j) d = fmaf(x2[j], c[j], d);
      if (d < best) best = d, arg = k;
    }
    codes_s[t * groups + g] = static_cast<uint16_t>(arg);
  }
  __syncthreads();
  pack_codes(codes_s, tokens * groups, bits, reinterpret_cast<uint32_t*>(page_bytes[page]));
}

// The same encoding with the search on tensor cores (tensor_core_search_fits(CH, 2^bits)); dynamic
// shared memory: encode_coupled_mma_shared_bytes. The block stages one group's table at a time
// (double-buffered: one barrier per group), and each warp finds the codes of 16 tokens at a time.
template <int CH>
__global__ void __launch_bounds__(kCoupledPageThreads) encode_coupled_pages_mma_kernel(const float* __restrict__ rows, int tokens,
                                                                                       int head_dim, int bits,
                                                                                       const float* const* centroids,
                                                                                       uint8_t* const* page_bytes) {
  extern __shared__ __align__(16) uint16_t codes_s[];  // [tokens][groups], then the two staged tables
  const int page = blockIdx.x, groups = head_dim / CH, codes = 1 << bits;
  const int warp = threadIdx.x / 32, warps = blockDim.x / 32, g = (threadIdx.x & 31) / 4;
  unsigned char* staged = reinterpret_cast<unsigned char*>(codes_s) + coupled_codes_shared_bytes(tokens, groups);
  const size_t staged_bytes = staged_centroid_bytes(CH, codes);
  const float* page_rows = rows + static_cast<size_t>(page) * tokens * head_dim;
  for (int group = 0; group < groups; ++group) {
    unsigned char* table = staged + (group % 2) * staged_bytes;
    stage_centroids<CH>(centroids[page] + static_cast<size_t>(group) * codes * CH, codes, table);
    __syncthreads();
    for (int first = warp * 16; first < tokens; first += warps * 16) {
      const auto row = [&](int r, int j) {
        return first + r < tokens ? page_rows[static_cast<size_t>(first + r) * head_dim + group * CH + j] : 0.f;
      };
      const uint2 code = nearest_of_16_rows<CH>(table, codes, row);
      if (threadIdx.x % 4 == 0) {
        if (first + g < tokens) codes_s[(first + g) * groups + group] = static_cast<uint16_t>(code.x);
        if (first + g + 8 < tokens) codes_s[(first + g + 8) * groups + group] = static_cast<uint16_t>(code.y);
      }
    }
  }
  __syncthreads();
  pack_codes(codes_s, tokens * groups, bits, reinterpret_cast<uint32_t*>(page_bytes[page]));
}

// grid: (n_pages * kv_heads), page k of KV head h at k * kv_heads + h; block: kCoupledPageThreads.
// centroids: per KV head [groups][2^bits][channels]; rows: bf16 [n_pages * tokens][kv_heads][head_dim].
__global__ void __launch_bounds__(kCoupledPageThreads) decode_coupled_pages_kernel(
    const uint8_t* const* pages, int kv_heads, int tokens, int head_dim, int channels, int bits,
    const float* const* centroids, uint16_t* __restrict__ rows) {
  const int page = blockIdx.x, k = page / kv_heads, h = page % kv_heads, groups = head_dim / channels;
  const uint32_t* words = reinterpret_cast<const uint32_t*>(pages[page]);
  const float* c_all = centroids[h];
  for (int i = threadIdx.x; i < tokens * head_dim; i += blockDim.x) {
    const int t = i / head_dim, channel = i % head_dim, g = channel / channels;
    const int bit = (t * groups + g) * bits, w = bit >> 5, shift = bit & 31;
    uint32_t code = words[w] >> shift;
    if (shift + bits > 32) code |= words[w + 1] << (32 - shift);
    code &= (1u << bits) - 1u;
    const float x = c_all[(static_cast<size_t>(g) << bits) * channels + static_cast<size_t>(code) * channels + channel % channels];
    rows[((static_cast<size_t>(k) * tokens + t) * kv_heads + h) * head_dim + channel] = __bfloat16_as_ushort(__float2bfloat16_rn(x));
  }
}

}  // namespace ringkv::kernels
