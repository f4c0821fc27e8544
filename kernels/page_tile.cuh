#pragma once
// A page of 128 tokens x head_dim 128 in a block's shared memory, as the tiled GPU kernels (KVQuant,
// RVQ) read pages into it: fp32 or swizzled fp16 tiles, and RoPE turning of the keys held there.
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstdint>

#include "kernels/cuda_check.hpp"

namespace ringkv::kernels {

constexpr int kTileDim = 128;    // tokens per page = head_dim = threads of a block (one per row or vector)
constexpr int kTilePitch = 129;  // floats per fp32 tile row: a column's elements fall in different banks
constexpr size_t kFloatTileBytes = sizeof(float) * kTileDim * kTilePitch;

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

// x rounded to fp16 as the CPU stores it (kvstore/quantize.hpp): saturated at the largest finite value.
__device__ inline __half store_half(float x) { return __float2half_rn(fminf(fmaxf(x, -65504.f), 65504.f)); }

// Tiles of a page in shared memory, element (token t, channel c). FloatTile: fp32 rows, for
// encoding and for decoding to bf16. HalfTile: fp16, the attention kernel's tensor-core operands,
// keys row-major (a word holds a token's channel pair) and values channel-major (a word holds a
// channel's token pair); word w of line r (a row or a column) sits at r * 64 + (w ^ swizzle(r)), so
// that the threads writing line by line and the lanes loading mma fragments (8 lines x 4 words)
// each hit 32 distinct banks.
struct FloatTile {
  float* p;  // [token][kTilePitch]
  __device__ float get(int t, int c) const { return p[t * kTilePitch + c]; }
  __device__ void put(int t, int c, float x) const { p[t * kTilePitch + c] = x; }
  __device__ void put_pair(int t, int c, float a, float b) const { put(t, c, a), put(t, c + 1, b); }
};

constexpr int kHalfTileWords = kTileDim * kTileDim / 2;

__device__ inline int swizzled_word(int line, int word) {
  return line * (kTileDim / 2) + (word ^ (4 * (line & 7) + ((line >> 3) & 3)));
}

template <bool CHANNEL_MAJOR>
struct HalfTile {
  __half* p;  // kHalfTileWords 32-bit words
  __device__ int at(int t, int c) const {
    const int line = CHANNEL_MAJOR ? c : t, e = CHANNEL_MAJOR ? t : c;
    return 2 * swizzled_word(line, e >> 1) + (e & 1);
  }
  __device__ float get(int t, int c) const { return __half2float(p[at(t, c)]); }
  __device__ void put(int t, int c, float x) const { p[at(t, c)] = __float2half_rn(x); }
  __device__ void put_pair(int t, int c, float a, float b) const {  // c even
    if constexpr (CHANNEL_MAJOR)
      put(t, c, a), put(t, c + 1, b);
    else
      *reinterpret_cast<__half2*>(p + at(t, c)) = __floats2half2_rn(a, b);
  }
  // Word w of line `line`: elements 2w and 2w + 1 of a token's row (keys) or a channel's column (values).
  __device__ uint32_t word(int line, int w) const { return reinterpret_cast<const uint32_t*>(p)[swizzled_word(line, w)]; }
  __device__ __half2 half_word(int line, int w) const { return reinterpret_cast<const __half2*>(p)[swizzled_word(line, w)]; }
  __device__ void put_word(int line, int w, __half2 x) const { reinterpret_cast<__half2*>(p)[swizzled_word(line, w)] = x; }
};

// Rotates every row t of a tile (at position + t) by `sign` times its angles (rotate-half layout,
// channel i with channel i + 64, as kernels/rope.cpp turns them), every row's angle from its
// position, as the CPU turns them (for encoding and decoding). The block's 128 threads: thread i of
// each half takes channel pair i over 64 rows.
template <typename Tile>
__device__ void rotate_tile(const Tile& tile, int position, float sign, const float* inv_freq) {
  constexpr int kHalf = kTileDim / 2;
  const int i = threadIdx.x % kHalf, first = threadIdx.x / kHalf * kHalf;
  for (int t = first; t < first + kHalf; ++t) {
    const float2 cs = rope_cos_sin(position + t, inv_freq[i]);
    const float sn = sign * cs.y, a = tile.get(t, i), b = tile.get(t, i + kHalf);
    tile.put(t, i, a * cs.x - b * sn);
    tile.put(t, i + kHalf, b * cs.x + a * sn);
  }
}

// cos and sin of offset * inv_freq for offsets whose angle stays below 2^7: the product kept exactly
// as a float pair, reduced by 2 pi in two parts (to within float rounding), then the fast sincos
// (absolute error below 2^-21 on [-pi, pi]): below 1e-6 in all.
__device__ inline float2 offset_angle_cos_sin(int offset, float inv_freq) {
  const float k = static_cast<float>(offset), angle = __fmul_rn(k, inv_freq), angle_error = fmaf(k, inv_freq, -angle);
  const float turns = rintf(angle * 0.15915494309189535f);  // 1 / (2 pi)
  // 2 pi = 6.28318548f - 1.7484556e-7f
  const float reduced = fmaf(-turns, -1.7484556e-7f, fmaf(-turns, 6.28318548f, angle)) + angle_error;
  float s, c;
  __sincosf(reduced, &s, &c);
  return {c, s};
}

// (a.x + i a.y)(b.x + i b.y): the angle of a plus the angle of b, for cos/sin pairs.
__device__ inline float2 add_angles(float2 a, float2 b) { return {a.x * b.x - a.y * b.y, a.y * b.x + a.x * b.y}; }

// Turns the keys of an fp16 tile (row t at position + t) to their positions, for the attention
// kernel: thread i of the block's 128 takes word w = i % 32 (channels 2w and 2w + 1) with word w + 32
// (their partners 2w + 64 and 2w + 65) over 32 rows, reading and writing whole words. A row's
// angles are the first row's exact ones stepped by one position per row (angle addition in float,
// drifting by a few 1e-7 over the 32 rows, far below fp16's rounding).
__device__ inline void rotate_keys_tile(const HalfTile<false>& tile, int position, const float* inv_freq) {
  // 32 word pairs a row; the block's threads in 4 groups of 32, each group taking 32 rows.
  constexpr int kWords = kTileDim / 4, kThreadGroups = kTileDim / kWords, kRows = kTileDim / kThreadGroups;
  const int w = threadIdx.x % kWords, first = threadIdx.x / kWords * kRows;
  float2 cs[2], step[2];
#pragma unroll
  for (int e = 0; e < 2; ++e) {
    const float f = inv_freq[2 * w + e];
    cs[e] = rope_cos_sin(position + first, f);
    sincosf(f, &step[e].y, &step[e].x);
  }
  for (int t = first; t < first + kRows; ++t) {
    const float2 a = __half22float2(tile.half_word(t, w)), b = __half22float2(tile.half_word(t, w + kWords));
    tile.put_word(t, w, __floats2half2_rn(a.x * cs[0].x - b.x * cs[0].y, a.y * cs[1].x - b.y * cs[1].y));
    tile.put_word(t, w + kWords, __floats2half2_rn(b.x * cs[0].x + a.x * cs[0].y, b.y * cs[1].x + a.y * cs[1].y));
#pragma unroll
    for (int e = 0; e < 2; ++e) cs[e] = add_angles(cs[e], step[e]);
  }
}

// rotate_tile within about 1e-6 (it: a few 1e-7) at a fraction of its cost, for encoders (a
// code tells that apart only at a near-tie): a row's angle is its half's first row's (rope_cos_sin)
// plus its offset 8a + b from that row, the cos/sin of 8a and of b from offset_angle_cos_sin, 16 a
// thread instead of a precise one per row.
template <typename Tile>
__device__ void rotate_tile_by_offsets(const Tile& tile, int position, float sign, const float* inv_freq) {
  constexpr int kHalf = kTileDim / 2, kStep = 8;
  const int i = threadIdx.x % kHalf, first = threadIdx.x / kHalf * kHalf;
  const float f = inv_freq[i];
  const float2 start = rope_cos_sin(position + first, f);
  float2 fine[kStep];  // offsets 0 to kStep - 1
#pragma unroll
  for (int b = 0; b < kStep; ++b) fine[b] = offset_angle_cos_sin(b, f);
  for (int a = 0; a < kHalf; a += kStep) {
    const float2 coarse = add_angles(start, offset_angle_cos_sin(a, f));
#pragma unroll
    for (int b = 0; b < kStep; ++b) {
      const float2 cs = add_angles(coarse, fine[b]);
      const int t = first + a + b;
      const float sn = sign * cs.y, x = tile.get(t, i), y = tile.get(t, i + kHalf);
      tile.put(t, i, x * cs.x - y * sn);
      tile.put(t, i + kHalf, y * cs.x + x * sn);
    }
  }
}

// Lets `kernel` take `bytes` of dynamic shared memory.
template <typename Kernel>
void allow_shared(Kernel kernel, size_t bytes) {
  RINGKV_CHECK_CUDA(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(bytes)));
}

}  // namespace ringkv::kernels
