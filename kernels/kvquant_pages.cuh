#pragma once
// KVQuant pages on the GPU, in the byte layout of kvstore/codec_kvquant.cpp (head_dim 128, pages of
// at most 128 tokens): sink rows in fp16, one fp16 (lo, hi) range per quantized vector (per channel
// for keys, per dense token for values), dense codes row-major LSB-first, then per vector its sparse
// outliers as (uint16 index, fp16 value). What encoding, decoding to bf16 and decode attention share:
// the layout of a page at a position, and a page read into a shared-memory tile as stored (keys
// before RoPE when the spec says so).
#include <cstdint>

#include "kernels/compiled_variants.hpp"
#include "kernels/kvquant_pages_gpu.hpp"
#include "kernels/page_tile.cuh"

namespace ringkv::kernels {

constexpr int kKVQuantMaxLevels = 16;  // 4-bit codes at most

struct KVQuantPageLayout {
  int n_sink, dense, vectors, length, per_vector;
  int ranges_at, codes_at, outliers_at;

  // The page of `tokens` tokens from first_position, as KVQuantCodec lays it out.
  __device__ static KVQuantPageLayout of(const KVQuantShapeGpu& p, bool keys, int tokens, int first_position) {
    KVQuantPageLayout l;
    l.n_sink = min(max(p.sink - first_position, 0), tokens);
    l.dense = tokens - l.n_sink;
    l.vectors = keys ? (l.dense > 0 ? kTileDim : 0) : l.dense;
    l.length = keys ? l.dense : kTileDim;
    l.per_vector = l.dense == 0 ? 0 : min(l.length, static_cast<int>(llround(p.outliers * l.length)));
    l.ranges_at = l.n_sink * kTileDim * 2;
    l.codes_at = l.ranges_at + l.vectors * 4;
    l.outliers_at = l.codes_at + (l.dense * kTileDim * p.bits + 7) / 8;
    return l;
  }
  // Element i of vector v as (row, channel) of the page's dense rows.
  __device__ int row_of(bool keys, int v, int i) const { return n_sink + (keys ? i : v); }
  __device__ static int channel_of(bool keys, int v, int i) { return keys ? v : i; }
};

// Code `index` of a packed row held in registers (the row's words, LSB-first).
template <int BITS, int WORDS>
__device__ inline uint32_t code_in_words(const uint32_t (&w)[WORDS], int index) {
  const int bit = index * BITS, word = bit >> 5, shift = bit & 31;
  uint32_t code = w[word] >> shift;
  if (shift + BITS > 32) code |= w[word + 1] << (32 - shift);
  return code & ((1u << BITS) - 1u);
}

// Reads a page into a tile as KVQuantCodec::decode_rows gives it (dequantized midpoint + half-width *
// level, sink rows and outliers exact), one thread per row; rows past `tokens` are left alone.
// levels: the page's 2^BITS levels in shared memory; range_s: kTileDim (midpoint, half-width)
// pairs of shared scratch. Ends with the block synchronized.
template <int BITS, typename Tile>
__device__ void read_kvquant_page(const uint8_t* __restrict__ page, const KVQuantPageLayout& l, bool keys, int tokens,
                                  const float* levels, float2* range_s, const Tile& tile) {
  constexpr int kWords = kTileDim * BITS / 32;  // a dense row's codes
  const int tid = threadIdx.x;
  if (keys && tid < l.vectors) {  // one range per channel, for every row
    const float2 r = __half22float2(reinterpret_cast<const __half2*>(page + l.ranges_at)[tid]);
    range_s[tid] = {0.5f * (r.y + r.x), 0.5f * (r.y - r.x)};
  }
  __syncthreads();
  if (tid < l.n_sink) {
    const __half2* sink = reinterpret_cast<const __half2*>(page) + tid * kTileDim / 2;
    for (int c = 0; c < kTileDim; c += 2) {
      const float2 x = __half22float2(sink[c / 2]);
      tile.put_pair(tid, c, x.x, x.y);
    }
  } else if (tid < tokens) {
    const int dt = tid - l.n_sink;
    uint32_t w[kWords];
    const uint32_t* codes = reinterpret_cast<const uint32_t*>(page + l.codes_at) + dt * kWords;
#pragma unroll
    for (int i = 0; i < kWords; ++i) w[i] = codes[i];
    float2 row_range{0.f, 0.f};
    if (!keys) {
      const float2 r = __half22float2(reinterpret_cast<const __half2*>(page + l.ranges_at)[dt]);
      row_range = {0.5f * (r.y + r.x), 0.5f * (r.y - r.x)};
    }
#pragma unroll
    for (int c = 0; c < kTileDim; c += 2) {
      const float2 r0 = keys ? range_s[c] : row_range, r1 = keys ? range_s[c + 1] : row_range;
      // Rounded as the CPU rounds: no fused multiply-add.
      tile.put_pair(tid, c, __fadd_rn(r0.x, __fmul_rn(r0.y, levels[code_in_words<BITS>(w, c)])),
                    __fadd_rn(r1.x, __fmul_rn(r1.y, levels[code_in_words<BITS>(w, c + 1)])));
    }
  }
  __syncthreads();
  if (tid < l.vectors) {  // outliers replace their dense elements
    const uint8_t* o = page + l.outliers_at + static_cast<size_t>(tid) * l.per_vector * 4;
    for (int j = 0; j < l.per_vector; ++j, o += 4) {
      const int i = *reinterpret_cast<const uint16_t*>(o);
      tile.put(l.row_of(keys, tid, i), KVQuantPageLayout::channel_of(keys, tid, i), __half2float(*reinterpret_cast<const __half*>(o + 2)));
    }
  }
  __syncthreads();
}

// How the tiled kernels (kernels/tiled_pages.cuh) read KVQuant pages: each stream's levels of both
// roles into shared memory once, then a page at a time into a tile.
template <int BITS>
struct KVQuantReader {
  KVQuantShapeGpu shape;
  const float* const* key_levels;    // device array [tables] of device pointers to 2^BITS levels
  const float* const* value_levels;  // the same for values
  struct Shared {
    float levels[2][kKVQuantMaxLevels];  // keys, values
    float2 range[kTileDim];
  };
  size_t shared_bytes() const { return sizeof(Shared); }
  __device__ bool pre_rope() const { return shape.pre_rope; }
  // No synchronization: the first read begins with one.
  __device__ void start(int table, unsigned char* shared) const {
    Shared& s = *reinterpret_cast<Shared*>(shared);
    if (threadIdx.x < (1 << BITS)) s.levels[0][threadIdx.x] = key_levels[table][threadIdx.x], s.levels[1][threadIdx.x] = value_levels[table][threadIdx.x];
  }
  // The page at `position` into the tile: synchronizes the block before writing the tile, and at the end.
  template <typename Tile>
  __device__ void read(const uint8_t* page, int position, bool keys, unsigned char* shared, const Tile& tile) const {
    Shared& s = *reinterpret_cast<Shared*>(shared);
    read_kvquant_page<BITS>(page, KVQuantPageLayout::of(shape, keys, kTileDim, position), keys, kTileDim, s.levels[keys ? 0 : 1],
                            s.range, tile);
  }
};

}  // namespace ringkv::kernels
