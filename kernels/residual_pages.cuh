#pragma once
// RVQ pages on the GPU, in the byte layout of kvstore/codec_residual.cpp (head_dim 128, pages of 128
// tokens): per token its fp16 scale (standard deviation), then the codes of every (token, channel
// group, codebook) in that order, ceil(log2(codes)) bits each, LSB-first. Keys take strided channel
// groups (group g holds channels g, g + groups, ...), values contiguous ones. What encoding,
// decoding to bf16 and decode attention share: the group layout, a code read, and the reader of the
// tiled kernels (kernels/tiled_pages.cuh).
#include "kernels/compiled_variants.hpp"
#include "kernels/page_tile.cuh"
#include "kernels/residual_pages_gpu.hpp"

namespace ringkv::kernels {

// Channel of slot j of channel group g.
__device__ inline int residual_channel(bool keys, int groups, int group, int g, int j) {
  return keys ? g + j * groups : g * group + j;
}

// Code `index` of a page's packed codes (at most 8 bits: two bytes read at most, none past the last code's).
__device__ inline uint32_t residual_code(const uint8_t* __restrict__ codes, int index, int bits) {
  const int bit = index * bits, byte = bit >> 3, shift = bit & 7;
  uint32_t word = codes[byte];
  if (shift + bits > 8) word |= static_cast<uint32_t>(codes[byte + 1]) << 8;
  return (word >> shift) & ((1u << bits) - 1u);
}

// ceil(log2(codes)) bits per code.
inline int residual_code_bits(const ResidualShapeGpu& shape) {
  int bits = 1;
  while ((1 << bits) < shape.codes) ++bits;
  return bits;
}

// How the tiled kernels read RVQ pages: each stream's codebook stacks into shared memory once (both
// roles in fp16 for attention; one role in fp32, value_codebooks null, for decoding to bf16 rows as
// ResidualCodec::decode_rows gives them), then per page each thread sums its token's codebook
// entries group by group.
template <int GROUP, typename Entry>
struct ResidualReader {
  ResidualShapeGpu shape;
  const float* const* key_codebooks;    // device array [tables] of device pointers to [depth][codes][GROUP]
  const float* const* value_codebooks;  // the same for values; null: one role, key_codebooks
  int code_bits;

  __host__ __device__ int roles() const { return value_codebooks ? 2 : 1; }
  __host__ __device__ size_t book_entries() const { return static_cast<size_t>(shape.depth) * shape.codes * GROUP; }
  size_t shared_bytes() const { return roles() * book_entries() * sizeof(Entry); }
  __device__ bool pre_rope() const { return shape.pre_rope; }
  // No synchronization: the first read begins with one.
  __device__ void start(int table, unsigned char* shared) const {
    Entry* books = reinterpret_cast<Entry*>(shared);
    const size_t n = book_entries();
    for (size_t i = threadIdx.x; i < n; i += blockDim.x) {
      books[i] = static_cast<Entry>(key_codebooks[table][i]);
      if (value_codebooks) books[n + i] = static_cast<Entry>(value_codebooks[table][i]);
    }
  }
  // The page into the tile: synchronizes the block before writing the tile, and at the end.
  template <typename Tile>
  __device__ void read(const uint8_t* __restrict__ page, int /*position*/, bool keys, unsigned char* shared, const Tile& tile) const {
    __syncthreads();
    const Entry* book = reinterpret_cast<const Entry*>(shared) + (keys || roles() == 1 ? 0 : book_entries());
    const int t = threadIdx.x, groups = kTileDim / GROUP;
    const float sd = __half2float(reinterpret_cast<const __half*>(page)[t]);
    const uint8_t* codes = page + 2 * kTileDim;
    for (int g = 0; g < groups; ++g) {
      float sum[GROUP] = {};
      for (int l = 0; l < shape.depth; ++l) {
        const uint32_t code = residual_code(codes, (t * groups + g) * shape.depth + l, code_bits);
        const Entry* entry = book + (static_cast<size_t>(l) * shape.codes + code) * GROUP;
#pragma unroll
        for (int j = 0; j < GROUP; ++j) sum[j] += static_cast<float>(entry[j]);
      }
#pragma unroll
      for (int j = 0; j < GROUP; ++j) tile.put(t, residual_channel(keys, groups, GROUP, g, j), sum[j] * sd);
    }
    __syncthreads();
  }
};

}  // namespace ringkv::kernels
