#pragma once
// KVQuant pages on the GPU, in the byte layout of kvstore/codec_kvquant.cpp (head_dim 128, pages of
// at most 128 tokens): sink rows in fp16, one fp16 (lo, hi) range per quantized vector (per channel
// for keys, per dense token for values), dense codes row-major LSB-first, then per vector its sparse
// outliers as (uint16 index, fp16 value). What encoding, decoding to bf16 and decode attention share:
// the layout of a page at a position, a page read into a shared-memory tile as stored (keys before
// RoPE when the spec says so), and the rotation at a position.
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstdint>

#include "kernels/compiled_variants.hpp"
#include "kernels/cuda_check.hpp"
#include "kernels/kvquant_pages_gpu.hpp"

namespace ringkv::kernels {

constexpr int kKVQuantDim = 128;   // head_dim; also the threads of a block (one per row or vector)
constexpr int kKVQuantPitch = 129;  // floats per tile row: a column's elements fall in different banks
constexpr int kKVQuantMaxLevels = 16;  // 4-bit codes at most
constexpr size_t kTileBytes = sizeof(float) * kKVQuantDim * kKVQuantPitch;  // a page as floats: the kernels' dynamic shared memory

struct KVQuantPageLayout {
  int n_sink, dense, vectors, length, per_vector;
  int ranges_at, codes_at, outliers_at;

  // The page of `tokens` tokens from first_position, as KVQuantCodec lays it out.
  __device__ static KVQuantPageLayout of(const KVQuantShapeGpu& p, bool keys, int tokens, int first_position) {
    KVQuantPageLayout l;
    l.n_sink = min(max(p.sink - first_position, 0), tokens);
    l.dense = tokens - l.n_sink;
    l.vectors = keys ? (l.dense > 0 ? kKVQuantDim : 0) : l.dense;
    l.length = keys ? l.dense : kKVQuantDim;
    l.per_vector = l.dense == 0 ? 0 : min(l.length, static_cast<int>(llround(p.outliers * l.length)));
    l.ranges_at = l.n_sink * kKVQuantDim * 2;
    l.codes_at = l.ranges_at + l.vectors * 4;
    l.outliers_at = l.codes_at + (l.dense * kKVQuantDim * p.bits + 7) / 8;
    return l;
  }
  // Element i of vector v as (row, channel) of the page's dense rows.
  __device__ int row_of(bool keys, int v, int i) const { return n_sink + (keys ? i : v); }
  __device__ static int channel_of(bool keys, int v, int i) { return keys ? v : i; }
};

// cos and sin of the RoPE angle position * inv_freq: the product and its reduction to [-pi, pi] in
// double (positions reach 10^7, where a float angle has no precision left), then float sincos.
__device__ inline float2 rope_cos_sin(int position, float inv_freq) {
  const double angle = static_cast<double>(position) * inv_freq;
  const double turns = rint(angle * 0.15915494309189535);  // 1 / (2 pi)
  const float reduced = static_cast<float>(fma(-turns, 6.283185307179586, angle));
  float s, c;
  sincosf(reduced, &s, &c);
  return {c, s};
}

// Rotates row `row` of a tile by `sign` times its position's angles (rotate-half layout, channel i
// with channel i + 64), as kernels/rope.cpp does.
__device__ inline void rotate_tile_row(float* tile, int row, int position, float sign, const float* inv_freq) {
  float* x = tile + row * kKVQuantPitch;
  for (int i = 0; i < kKVQuantDim / 2; ++i) {
    float2 cs = rope_cos_sin(position, inv_freq[i]);
    cs.y *= sign;
    const float a = x[i], b = x[i + kKVQuantDim / 2];
    x[i] = a * cs.x - b * cs.y;
    x[i + kKVQuantDim / 2] = b * cs.x + a * cs.y;
  }
}

// Code `index` of a packed row held in registers (the row's words, LSB-first).
template <int BITS, int WORDS>
__device__ inline uint32_t code_in_words(const uint32_t (&w)[WORDS], int index) {
  const int bit = index * BITS, word = bit >> 5, shift = bit & 31;
  uint32_t code = w[word] >> shift;
  if (shift + BITS > 32) code |= w[word + 1] << (32 - shift);
  return code & ((1u << BITS) - 1u);
}

// Reads a page into tile[tokens][kKVQuantPitch] as KVQuantCodec::decode_rows gives it (dequantized
// midpoint + half-width * level, sink rows and outliers exact), one thread per row; rows past
// `tokens` are left alone. levels: the page's 2^BITS levels in shared memory; range_s: 2 *
// kKVQuantDim floats of shared scratch. Ends with the block synchronized.
template <int BITS>
__device__ void read_kvquant_page(const uint8_t* __restrict__ page, const KVQuantPageLayout& l, bool keys, int tokens,
                                  const float* levels, float* range_s, float* tile) {
  constexpr int kWords = kKVQuantDim * BITS / 32;  // a dense row's codes
  const int tid = threadIdx.x;
  if (keys && tid < l.vectors) {  // one range per channel, for every row
    const float2 r = __half22float2(reinterpret_cast<const __half2*>(page + l.ranges_at)[tid]);
    range_s[tid] = 0.5f * (r.y + r.x), range_s[kKVQuantDim + tid] = 0.5f * (r.y - r.x);
  }
  __syncthreads();
  float* row = tile + tid * kKVQuantPitch;
  if (tid < l.n_sink) {
    const __half* sink = reinterpret_cast<const __half*>(page) + tid * kKVQuantDim;
    for (int c = 0; c < kKVQuantDim; ++c) row[c] = __half2float(sink[c]);
  } else if (tid < tokens) {
    const int dt = tid - l.n_sink;
    uint32_t w[kWords];
    const uint32_t* codes = reinterpret_cast<const uint32_t*>(page + l.codes_at) + dt * kWords;
#pragma unroll
    for (int i = 0; i < kWords; ++i) w[i] = codes[i];
    float mid = 0.f, half = 0.f;
    if (!keys) {
      const float2 r = __half22float2(reinterpret_cast<const __half2*>(page + l.ranges_at)[dt]);
      mid = 0.5f * (r.y + r.x), half = 0.5f * (r.y - r.x);
    }
#pragma unroll
    for (int c = 0; c < kKVQuantDim; ++c) {
      const float level = levels[code_in_words<BITS>(w, c)];
      // Rounded as the CPU rounds: no fused multiply-add.
      row[c] = keys ? __fadd_rn(range_s[c], __fmul_rn(range_s[kKVQuantDim + c], level)) : __fadd_rn(mid, __fmul_rn(half, level));
    }
  }
  __syncthreads();
  if (tid < l.vectors) {  // outliers replace their dense elements
    const uint8_t* o = page + l.outliers_at + static_cast<size_t>(tid) * l.per_vector * 4;
    for (int j = 0; j < l.per_vector; ++j, o += 4) {
      const int i = *reinterpret_cast<const uint16_t*>(o);
      tile[l.row_of(keys, tid, i) * kKVQuantPitch + KVQuantPageLayout::channel_of(keys, tid, i)] =
          __half2float(*reinterpret_cast<const __half*>(o + 2));
    }
  }
  __syncthreads();
}

// Lets `kernel` take kTileBytes of dynamic shared memory.
template <typename Kernel>
void allow_tile(Kernel kernel) {
  RINGKV_CHECK_CUDA(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(kTileBytes)));
}

}  // namespace ringkv::kernels
