#pragma once
// Encoding and decoding of full Coupled-Quantization pages on the GPU (layout of
// kvstore/codec_coupled.cpp: tokens x groups codes of `bits` bits, row-major, LSB-first).
// Encoding finds each group's nearest centroid as CoupledCodec does (squared norm of the centroid
// plus -2x.c summed in channel order with fused multiply-adds, the first index of least distance
// winning; the page's centroid table in shared memory where it fits), then packs the codes word by
// word. (With one channel per group the CPU searches sorted midpoints instead: an exact tie may go
// to another index of the same distance.) Decoding writes each group's centroid, rounded
// to bf16, into the rows prefill attends to.
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstdint>

namespace ringkv::kernels {

constexpr int kCoupledPageThreads = 256;

// Shared memory bytes of the encoder: with the page's centroid table and its squared norms
// (TABLE_SHARED), else only the codes.
inline size_t encode_coupled_shared_bytes(int tokens, int head_dim, int channels, int bits, bool table_shared) {
  const size_t groups = head_dim / channels, entries = groups << bits;
  return (table_shared ? (entries * channels + entries) * sizeof(float) : 0) + tokens * groups * sizeof(uint16_t);
}

// grid: pages; block: kCoupledPageThreads; dynamic shared memory: encode_coupled_shared_bytes.
// rows: fp32 [pages][tokens][head_dim]; centroids: per page [groups][2^bits][channels]. A warp takes
// 32 tokens of one group, so that it reads each centroid once (a broadcast).
template <bool TABLE_SHARED>
__global__ void __launch_bounds__(kCoupledPageThreads) encode_coupled_pages_kernel(
    const float* __restrict__ rows, int tokens, int head_dim, int channels, int bits, const float* const* centroids,
    uint8_t* const* page_bytes) {
  extern __shared__ __align__(16) float shared[];
  const int page = blockIdx.x, groups = head_dim / channels, codes = 1 << bits, entries = groups * codes;
  float* table_s = shared;                 // [groups][codes][channels]
  float* norms_s = table_s + static_cast<size_t>(entries) * channels;  // [groups][codes]
  uint16_t* codes_s = reinterpret_cast<uint16_t*>(TABLE_SHARED ? norms_s + entries : shared);  // [tokens][groups]
  const float* table = TABLE_SHARED ? table_s : centroids[page];
  if constexpr (TABLE_SHARED) {
    const float* c_all = centroids[page];
    for (int i = threadIdx.x; i < entries * channels; i += blockDim.x) table_s[i] = c_all[i];
    __syncthreads();
    for (int e = threadIdx.x; e < entries; e += blockDim.x) {
      const float* c = table_s + static_cast<size_t>(e) * channels;
      float norm = 0.f;
      for (int j = 0; j < channels; ++j) norm = fmaf(c[j], c[j], norm);
      norms_s[e] = norm;
    }
    __syncthreads();
  }
  const float* page_rows = rows + static_cast<size_t>(page) * tokens * head_dim;
  for (int i = threadIdx.x; i < tokens * groups; i += blockDim.x) {
    const int g = i / tokens, t = i % tokens;
    const float* x = page_rows + static_cast<size_t>(t) * head_dim + g * channels;
    const float* c = table + static_cast<size_t>(g) * codes * channels;
    float best = INFINITY;
    int arg = 0;
    for (int k = 0; k < codes; ++k, c += channels) {
      float d;
      if constexpr (TABLE_SHARED) {
        d = norms_s[g * codes + k];
      } else {
        d = 0.f;
        for (int j = 0; j < channels; ++j) d = fmaf(c[j], c[j], d);
      }
      for (int j = 0; j < channels; ++j) d = fmaf(-2.0f * x[j], c[j], d);
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
