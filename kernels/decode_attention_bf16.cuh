#pragma once
// Decode attention of GROUP query heads per KV head over a bf16 KV cache laid out
// [tokens][kv_heads][head_dim] (keys after RoPE), flash-decoding style: each block is one warp and
// one split of the keys, writing a partial (out, lse) per query head; merge_states joins the
// splits. Both products run on tensor cores (mma.sync m16n8k16, bf16 in, fp32 accumulate), the
// cache's rows straight from shared memory (ldmatrix):
//   scores S[q][t] = q . k_t: A = the queries (rows: GROUP of 16), B = keys of 8 tokens;
//   values O[q][c] += sum_t p[q][t] v_t[c]: A = the probabilities, taken from the score fragments
//          in registers, B = values of 16 tokens (transposed loads).
// The fp32 queries and probabilities go in as two bf16 parts each (x = hi + lo, each product run
// twice), which keeps them to about 2^-17 of fp32: the bf16 cache's own values go in exactly. A
// warp copies stages of 32 tokens' keys and values into three shared-memory slots (cp.async), two
// on their way while it computes on the third.
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstdint>

#include "kernels/copy_async.cuh"
#include "kernels/fast_exp2.cuh"
#include "kernels/mma.cuh"

namespace ringkv::kernels {

constexpr int kDecodeBf16Tokens = 32;  // tokens per stage
constexpr int kDecodeBf16Slots = 3;

// Bytes of a token's row in shared memory: 16 bytes of padding put 8 rows' 16-byte pieces in
// distinct banks for ldmatrix.
template <int HEAD_DIM>
constexpr int bf16_row_bytes() {
  return 2 * HEAD_DIM + 16;
}
template <int HEAD_DIM>
constexpr int bf16_shared_bytes() {
  return kDecodeBf16Slots * 2 * kDecodeBf16Tokens * bf16_row_bytes<HEAD_DIM>();
}

// x as bf16 pairs hi + lo (lo: the rounding error of hi, rounded again).
__device__ inline void split_bf16(float x0, float x1, uint32_t& hi, uint32_t& lo) {
  const __nv_bfloat162 h = __floats2bfloat162_rn(x0, x1);
  const __nv_bfloat162 l = __floats2bfloat162_rn(x0 - __low2float(h), x1 - __high2float(h));
  hi = *reinterpret_cast<const uint32_t*>(&h), lo = *reinterpret_cast<const uint32_t*>(&l);
}

// grid: (kv_heads, splits); block: 32 threads; dynamic shared memory: bf16_shared_bytes<HEAD_DIM>().
// The key count is n_keys, or *device_keys where given (read on the device: one CUDA graph serves
// decode steps of different lengths). queries: fp32 [kv_heads * GROUP][HEAD_DIM]; split_out:
// [splits][kv_heads * GROUP][HEAD_DIM], split_lse: [splits][kv_heads * GROUP] (natural log).
// Lane (g, i) works for query g (nothing past GROUP): scores of tokens 8n + 2i, 2i + 1 of a stage,
// outputs of channels 8n + 2i, 2i + 1.
template <int HEAD_DIM, int GROUP>
__global__ void __launch_bounds__(32, 4) decode_attention_bf16_kernel(const float* __restrict__ queries,
                                                                   const uint16_t* __restrict__ keys,
                                                                   const uint16_t* __restrict__ values, int n_keys,
                                                                   const int* __restrict__ device_keys, int kv_heads, float scale,
                                                                   float* __restrict__ split_out, float* __restrict__ split_lse) {
  static_assert(GROUP <= 8, "at most 8 query heads per KV head");
  constexpr int kDim = HEAD_DIM, kT = kDecodeBf16Tokens, kRow = bf16_row_bytes<kDim>(), kSlot = 2 * kT * kRow;
  constexpr int kKTiles = kDim / 16, kChannelTiles = kDim / 8, kTokenTiles = kT / 8, kChunks = 2 * kDim / 16;
  constexpr float kLog2e = 1.4426950408889634f;
  extern __shared__ __align__(16) uint8_t shared[];  // [slot][keys, values][token][kRow]
  const int kv_head = blockIdx.x, split = blockIdx.y, heads = kv_heads * GROUP;
  const int lane = threadIdx.x, group = lane >> 2, i = lane & 3;
  if (device_keys) n_keys = *device_keys;
  const int per_split = (n_keys + gridDim.y - 1) / gridDim.y;
  const int begin = min(n_keys, split * per_split), end = min(n_keys, begin + per_split);

  // A of the scores: query `group` at channels 16kt + 2i, +1 (h = 0) and + 8 (h = 1); rows 8-15 zero.
  uint32_t q_hi[kKTiles][2], q_lo[kKTiles][2];
  const float* q = queries + static_cast<size_t>(kv_head * GROUP + min(group, GROUP - 1)) * kDim;
#pragma unroll
  for (int kt = 0; kt < kKTiles; ++kt)
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      const int c = 16 * kt + 2 * i + 8 * h;
      split_bf16(group < GROUP ? q[c] : 0.f, group < GROUP ? q[c + 1] : 0.f, q_hi[kt][h], q_lo[kt][h]);
    }
  const float score_scale = scale * kLog2e;  // softmax in base 2
  float m = -INFINITY, l = 0.f, acc[kChannelTiles][4] = {};  // l: this lane's tokens only

  const size_t row_stride = static_cast<size_t>(kv_heads) * kDim, column = static_cast<size_t>(kv_head) * kDim;
  // Stage x (tokens begin + 32x on) into slot x % 3, rows past the split zero-filled; one commit
  // group per stage, empty past the end, so that the count in flight is the same every stage.
  auto fetch = [&](int x) {
    const int first = begin + x * kT;
    if (first < end) {
      uint8_t* dst = shared + (x % kDecodeBf16Slots) * kSlot;
#pragma unroll 4
      for (int c = lane; c < kT * kChunks; c += 32) {
        const int t = c / kChunks, piece = c % kChunks;
        const bool valid = first + t < end;
        const size_t at = static_cast<size_t>(valid ? first + t : first) * row_stride + column + piece * 8;
        copy_async_16(dst + t * kRow + piece * 16, keys + at, valid);
        copy_async_16(dst + (kT + t) * kRow + piece * 16, values + at, valid);
      }
    }
    copy_async_commit();
  };
  const int stages = (end - begin + kT - 1) / kT;
  fetch(0), fetch(1);
  for (int x = 0; x < stages; ++x) {
    copy_async_wait<1>();
    __syncwarp();
    const uint8_t* key_rows = shared + (x % kDecodeBf16Slots) * kSlot;
    const uint8_t* value_rows = key_rows + kT * kRow;

    float s[kTokenTiles][4] = {};
#pragma unroll
    for (int nt = 0; nt < kTokenTiles; ++nt)
#pragma unroll
      for (int kp = 0; kp < kKTiles / 2; ++kp) {  // two k-tiles (32 channels) per load
        uint32_t b[4];
        load_tiles_x4<false>(b, key_rows + (nt * 8 + (lane & 7)) * kRow + (32 * kp + 8 * (lane >> 3)) * 2);
#pragma unroll
        for (int half = 0; half < 2; ++half) {
          const int kt = 2 * kp + half;
          const uint32_t a_hi[4] = {q_hi[kt][0], 0u, q_hi[kt][1], 0u}, a_lo[4] = {q_lo[kt][0], 0u, q_lo[kt][1], 0u};
          mma_16816<true>(s[nt], a_hi, b[2 * half], b[2 * half + 1]);
          mma_16816<true>(s[nt], a_lo, b[2 * half], b[2 * half + 1]);
        }
      }
    // Online softmax of query `group` over the stage (the quad's lanes hold its tokens).
    const int stage_first = begin + x * kT;
    float stage_max = -INFINITY;
#pragma unroll
    for (int nt = 0; nt < kTokenTiles; ++nt)
#pragma unroll
      for (int j = 0; j < 2; ++j) {
        const bool valid = stage_first + nt * 8 + 2 * i + j < end;
        s[nt][j] = valid ? s[nt][j] * score_scale : -INFINITY;
        stage_max = fmaxf(stage_max, s[nt][j]);
      }
    stage_max = fmaxf(stage_max, __shfl_xor_sync(0xffffffffu, stage_max, 1));
    stage_max = fmaxf(stage_max, __shfl_xor_sync(0xffffffffu, stage_max, 2));
    const float new_m = fmaxf(m, stage_max), rescale = fast_exp2(m - new_m);  // 0 on the first stage
    m = new_m, l *= rescale;
#pragma unroll
    for (int ct = 0; ct < kChannelTiles; ++ct) acc[ct][0] *= rescale, acc[ct][1] *= rescale;
#pragma unroll
    for (int kt = 0; kt < kT / 16; ++kt) {  // tokens 16kt on: score tiles 2kt (A's columns 0-7) and 2kt + 1
      float p[4];
#pragma unroll
      for (int j = 0; j < 4; ++j) {
        p[j] = fast_exp2(s[2 * kt + j / 2][j % 2] - m);
        l += p[j];
      }
      uint32_t a_hi[4] = {0u, 0u, 0u, 0u}, a_lo[4] = {0u, 0u, 0u, 0u};
      split_bf16(p[0], p[1], a_hi[0], a_lo[0]);
      split_bf16(p[2], p[3], a_hi[2], a_lo[2]);
#pragma unroll
      for (int cp = 0; cp < kChannelTiles / 2; ++cp) {  // two channel tiles per load
        uint32_t b[4];
        load_tiles_x4<true>(b, value_rows + (16 * kt + (lane & 15)) * kRow + (16 * cp + 8 * (lane >> 4)) * 2);
#pragma unroll
        for (int half = 0; half < 2; ++half) {
          mma_16816<true>(acc[2 * cp + half], a_hi, b[2 * half], b[2 * half + 1]);
          mma_16816<true>(acc[2 * cp + half], a_lo, b[2 * half], b[2 * half + 1]);
        }
      }
    }
    __syncwarp();  // the slot is read before it is refilled
    fetch(x + 2);
  }
  l += __shfl_xor_sync(0xffffffffu, l, 1);
  l += __shfl_xor_sync(0xffffffffu, l, 2);
  if (group >= GROUP) return;
  const size_t row = static_cast<size_t>(split) * heads + kv_head * GROUP + group;
#pragma unroll
  for (int ct = 0; ct < kChannelTiles; ++ct)
#pragma unroll
    for (int j = 0; j < 2; ++j) split_out[row * kDim + 8 * ct + 2 * i + j] = l > 0.f ? acc[ct][j] / l : 0.f;
  if (i == 0) split_lse[row] = l > 0.f ? (m + log2f(l)) / kLog2e : -INFINITY;
}

}  // namespace ringkv::kernels
