#pragma once
// Encoding and decoding of full Coupled-Quantization pages on the GPU (layout of
// kvstore/codec_coupled.cpp: tokens x groups codes of `bits` bits, row-major, LSB-first).
// Encoding finds each group's nearest centroid as CoupledCodec does (squared norm of the centroid
// plus -2x.c summed in channel order with fused multiply-adds, the first index of least distance
// winning), then packs the codes word by word. (With one channel per group the CPU searches sorted midpoints instead: an exact tie may go
// to another index of the same distance.) Decoding writes each group's centroid, rounded
// to bf16, into the rows prefill attends to.
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstdint>

#include "kernels/vector_search.cuh"

namespace ringkv::kernels {

constexpr int kCoupledPageThreads = 256;

// Squared norms of the centroids go to shared memory where a block may hold them all (else each
// search computes them again).
constexpr size_t kCoupledNormsShared = 48 << 10;

// Shared memory bytes of the encoder: the codes of a page, then the squared norms of its centroids
// where they fit.
inline size_t encode_coupled_shared_bytes(int tokens, int head_dim, int channels, int bits) {
  const size_t groups = head_dim / channels, norms = (groups << bits) * sizeof(float);
  return ((tokens * groups + 7) & ~size_t{7}) * sizeof(uint16_t) + (norms <= kCoupledNormsShared ? norms : 0);
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
  // Word w of the page holds bits [32w, 32w + 32) of the codes in (token, group) order.
  uint32_t* out = reinterpret_cast<uint32_t*>(page_bytes[page]);
  const int n_codes = tokens * groups, words = (n_codes * bits + 31) / 32;
  for (int w = threadIdx.x; w < words; w += blockDim.x) {
    uint32_t word = 0;
    for (int i = w * 32 / bits; i < n_codes && i * bits < (w + 1) * 32; ++i) {
      const int shift = i * bits - w * 32;  // may be negative: the code began in the word before
      word |= shift >= 0 ? static_cast<uint32_t>(codes_s[i]) << shift : static_cast<uint32_t>(codes_s[i]) >> -shift;
    }
    out[w] = word;
  }
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
