#pragma once
// Decode attention over Coupled-Quantization pages on the GPU. Keys through per-query lookup
// tables, as the CQ paper computes them: the dot products of each channel group of the queries with
// that group's 2^bits key centroids go into a table in shared memory, so a key's score is a sum of
// one table entry per group. Values from their centroids, also in shared memory, as bf16 (half
// the bytes of fp32, and shared-memory reads bound the kernel; an output is off by at most bf16's
// rounding of the centroids): each lane of a warp owns D/32 output channels and adds, for every
// key, the probability times the centroid its code names. (Summing probabilities per centroid and multiplying once, as the paper does, needs
// shared-memory float atomics, which the GPU runs as compare-and-swap loops: ten times slower.)
//
// Pages hold tokens x groups codes of `bits` bits, row-major, packed LSB-first
// (kvstore/codec_coupled.cpp), each page 4-byte aligned. A block takes one stream (a layer's KV
// head), one split of its pages, and QP of the queries that share the KV head at once (table
// entries hold QP values side by side, so one lookup serves them all). Each warp takes 32 keys at a
// time: it first unpacks their key and value codes into shared memory as bytes (or 16-bit words
// for wider codes), so that the loops over keys read a code in one instruction; then a key per lane
// for the scores, with an online softmax, and the tile's probabilities through shared memory to
// every lane for the values. The warps' states merge at the end, and merge_states joins the splits.
// The CPU twin is partial_attention through CoupledCodec.
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstdint>

#include "kernels/fast_exp2.cuh"

namespace ringkv::kernels {

constexpr int kCoupledMostWarps = 16, kCoupledTileKeys = 32;

struct CoupledKernelParams {
  const uint8_t* const* key_pages;        // [streams][n_pages]
  const uint8_t* const* value_pages;      // [streams][n_pages]
  const float* const* key_centroids;      // [streams] -> [groups][codes][channels]
  const float* const* value_centroids;    // [streams]
  int n_pages, page_tokens, pages_per_split, head_dim;
  int key_channels, key_bits, value_channels, value_bits;
};

__host__ __device__ inline size_t coupled_round_up(size_t n, size_t to) { return (n + to - 1) / to * to; }

// Bytes of a row of staged key codes (padded so that a lane reads its row 16 bytes at a time).
__host__ __device__ inline int coupled_key_pitch(const CoupledKernelParams& p, int code_bytes) {
  return static_cast<int>(coupled_round_up(static_cast<size_t>(p.head_dim / p.key_channels) * code_bytes, 16));
}
// A warp's staging bytes: the tile's key codes (then, once scored, its probabilities), then its value codes.
__host__ __device__ inline size_t coupled_key_stage_bytes(const CoupledKernelParams& p, int qp, int code_bytes) {
  const size_t codes = static_cast<size_t>(kCoupledTileKeys) * coupled_key_pitch(p, code_bytes);
  const size_t probabilities = static_cast<size_t>(kCoupledTileKeys) * qp * sizeof(float);
  return codes > probabilities ? codes : probabilities;
}
__host__ __device__ inline size_t coupled_value_stage_bytes(const CoupledKernelParams& p, int code_bytes) {
  return coupled_round_up(static_cast<size_t>(kCoupledTileKeys) * (p.head_dim / p.value_channels) * code_bytes, 16);
}
// The regions of shared memory, each a multiple of 16 bytes: the key table (or, after the keys, the
// warps' states) and the queries in fp32, the value centroids in bf16, the warps' staged codes.
__host__ __device__ inline size_t coupled_table_floats(const CoupledKernelParams& p, int qp, int warps) {
  const size_t key_table = qp * (static_cast<size_t>(p.head_dim / p.key_channels) << p.key_bits);
  const size_t warp_states = static_cast<size_t>(warps) * qp * (p.head_dim + 2);
  return coupled_round_up(key_table > warp_states ? key_table : warp_states, 4);
}
__host__ __device__ inline size_t coupled_value_centroid_bytes(const CoupledKernelParams& p) {
  return coupled_round_up((static_cast<size_t>(p.head_dim) << p.value_bits) * sizeof(__nv_bfloat16), 16);
}
// Codes staged as bytes where they fit in 8 bits, else as 16-bit words.
inline int coupled_code_bytes(const CoupledKernelParams& p) { return p.key_bits <= 8 && p.value_bits <= 8 ? 1 : 2; }

// Dynamic shared memory of a block of `warps` warps taking QP queries at once.
inline size_t coupled_shared_bytes(const CoupledKernelParams& p, int qp, int warps) {
  const int code_bytes = coupled_code_bytes(p);
  const size_t floats = coupled_table_floats(p, qp, warps) + static_cast<size_t>(qp) * p.head_dim;
  return floats * sizeof(float) + coupled_value_centroid_bytes(p) +
         warps * (coupled_key_stage_bytes(p, qp, code_bytes) + coupled_value_stage_bytes(p, code_bytes));
}

// The index-th code of `bits` (at most 16) bits, LSB-first, from the page's 32-bit words.
__device__ inline uint32_t coupled_code(const uint8_t* page, int index, int bits) {
  const uint32_t* words = reinterpret_cast<const uint32_t*>(page);
  const int bit = index * bits, w = bit >> 5, shift = bit & 31;
  uint32_t v = __ldg(words + w) >> shift;
  if (shift + bits > 32) v |= __ldg(words + w + 1) << (32 - shift);
  return v & ((1u << bits) - 1u);
}

// N consecutive floats of shared memory (aligned to their size) in one load.
template <int N>
__device__ inline void load_row(const float* at, float (&v)[N]) {
  if constexpr (N == 4) {
    const float4 x = *reinterpret_cast<const float4*>(at);
    v[0] = x.x, v[1] = x.y, v[2] = x.z, v[3] = x.w;
  } else if constexpr (N == 2) {
    const float2 x = *reinterpret_cast<const float2*>(at);
    v[0] = x.x, v[1] = x.y;
  } else {
    v[0] = *at;
  }
}

// The codes of a tile's 32 rows of `groups` codes (from code `first` of the page) into shared
// memory, row r at out + r * pitch, by the 32 lanes of a warp. Byte codes in unpadded rows are
// copied word for word.
template <typename Code>
__device__ void stage_tile_codes(const uint8_t* page, int first, int groups, int bits, Code* out, int pitch, int lane) {
  if (sizeof(Code) == 1 && bits == 8 && pitch == groups && groups % 4 == 0) {
    const uint32_t* from = reinterpret_cast<const uint32_t*>(page + first);
    uint32_t* to = reinterpret_cast<uint32_t*>(out);
#pragma unroll 4
    for (int w = lane; w < kCoupledTileKeys / 4 * groups; w += 32) to[w] = __ldg(from + w);
  } else {
    for (int i = lane; i < kCoupledTileKeys * groups; i += 32) {
      const int r = i / groups;
      out[r * pitch + i - r * groups] = static_cast<Code>(coupled_code(page, first + i, bits));
    }
  }
}

// Code b of a 16-byte chunk of staged codes (b known at compile time after unrolling).
template <typename Code>
__device__ inline uint32_t code_in_chunk(const uint4& chunk, int b) {
  constexpr int kPerWord = 4 / sizeof(Code), kBits = 8 * sizeof(Code);
  const int w = b / kPerWord;
  const uint32_t word = w == 0 ? chunk.x : w == 1 ? chunk.y : w == 2 ? chunk.z : chunk.w;
  return (word >> (b % kPerWord * kBits)) & ((1u << kBits) - 1u);
}

// A key's scores for QP queries: over its groups, the table entries its codes name. row: the key's
// staged codes, 16-byte aligned and padded.
template <int QP, typename Code>
__device__ inline void key_scores(const float* table, const Code* row, int groups, int bits, float (&s)[QP]) {
  constexpr int kPerChunk = 16 / sizeof(Code);
#pragma unroll
  for (int q = 0; q < QP; ++q) s[q] = 0.f;
  for (int g0 = 0; g0 < groups; g0 += kPerChunk) {
    const uint4 chunk = *reinterpret_cast<const uint4*>(row + g0);
#pragma unroll
    for (int b = 0; b < kPerChunk; ++b)
      if (g0 + b < groups) {
        float v[QP];
        load_row<QP>(table + (((g0 + b) << bits) + code_in_chunk<Code>(chunk, b)) * QP, v);
#pragma unroll
        for (int q = 0; q < QP; ++q) s[q] += v[q];
      }
  }
}

// The channel of a lane's k-th accumulator when its D/32 channels lie in `span` segments of
// consecutive channels, D / span apart (so that each segment lies in one value group).
template <int D>
__device__ inline int lane_channel(int lane, int span, int k) {
  const int width = D / 32 / span;
  return k / width * (D / span) + lane * width + k % width;
}

// N consecutive bf16 of shared memory (aligned to their size) in one load, as floats.
template <int N>
__device__ inline void load_bf16_row(const __nv_bfloat16* at, float (&v)[N]) {
  if constexpr (N == 4) {
    const uint2 x = *reinterpret_cast<const uint2*>(at);
    v[0] = __uint_as_float(x.x << 16), v[1] = __uint_as_float(x.x & 0xffff0000u);
    v[2] = __uint_as_float(x.y << 16), v[3] = __uint_as_float(x.y & 0xffff0000u);
  } else if constexpr (N == 2) {
    const uint32_t x = *reinterpret_cast<const uint32_t*>(at);
    v[0] = __uint_as_float(x << 16), v[1] = __uint_as_float(x & 0xffff0000u);
  } else {
    v[0] = __bfloat162float(*at);
  }
}

// Every key of the tile: its probability (probs [32][QP]) times its value centroids, on this lane's
// channels (S segments). codes: the tile's staged value codes [32][groups]; centroids
// [groups][value_codes][channels] in shared memory.
template <int S, int QP, int D, typename Code>
__device__ inline void accumulate_values(const float* probs, const Code* codes, int groups, const __nv_bfloat16* centroids,
                                         int value_codes, int channels, int lane, float (&acc)[QP][D / 32]) {
  constexpr int kWidth = D / 32 / S;
  int group[S], offset[S];  // each segment's group, and where its channels start in that group's first centroid
#pragma unroll
  for (int s = 0; s < S; ++s) {
    const int c = lane_channel<D>(lane, S, s * kWidth);
    group[s] = c / channels, offset[s] = group[s] * value_codes * channels + c % channels;
  }
#pragma unroll 4
  for (int j = 0; j < kCoupledTileKeys; ++j) {
    float pj[QP];
    load_row<QP>(probs + j * QP, pj);
#pragma unroll
    for (int s = 0; s < S; ++s) {
      float v[kWidth];
      load_bf16_row<kWidth>(centroids + offset[s] + static_cast<int>(codes[j * groups + group[s]]) * channels, v);
#pragma unroll
      for (int q = 0; q < QP; ++q)
#pragma unroll
        for (int w = 0; w < kWidth; ++w) acc[q][s * kWidth + w] = fmaf(pj[q], v[w], acc[q][s * kWidth + w]);
    }
  }
}

// grid: (splits, streams); block: 32 x warps (at most kCoupledMostWarps); dynamic shared memory:
// coupled_shared_bytes. queries: post-RoPE [streams][n_queries][D]; split_out
// [splits][streams][n_queries][D], split_lse [splits][streams][n_queries] (natural log).
// page_tokens is a multiple of 32. Code: uint8_t where coupled_code_bytes is 1, else uint16_t.
template <int QP, int D, typename Code>
__global__ void __launch_bounds__(kCoupledMostWarps * 32, 1) decode_attention_coupled_kernel(
    CoupledKernelParams p, const float* __restrict__ queries, int n_queries, float scale, float* __restrict__ split_out,
    float* __restrict__ split_lse) {
  constexpr float kLog2e = 1.4426950408889634f;
  constexpr int kLaneChannels = D / 32;
  extern __shared__ __align__(16) float shared[];
  const int split = blockIdx.x, stream = blockIdx.y, streams = gridDim.y, tid = threadIdx.x;
  const int warp = tid / 32, lane = tid % 32, warps = blockDim.x / 32;
  const int key_groups = D / p.key_channels, key_codes = 1 << p.key_bits;
  const int value_groups = D / p.value_channels, value_codes = 1 << p.value_bits;
  const int key_entries = key_groups * key_codes;
  float* table = shared;  // [key_groups][key_codes][QP]; after the keys, the warps' states
  float* query_s = table + coupled_table_floats(p, QP, warps);  // [QP][D], log2 units
  __nv_bfloat16* value_centroid_s = reinterpret_cast<__nv_bfloat16*>(query_s + QP * D);  // [groups][codes][channels]
  const size_t key_stage = coupled_key_stage_bytes(p, QP, sizeof(Code)), value_stage = coupled_value_stage_bytes(p, sizeof(Code));
  unsigned char* stage =
      reinterpret_cast<unsigned char*>(value_centroid_s) + coupled_value_centroid_bytes(p) + warp * (key_stage + value_stage);
  Code* key_codes_s = reinterpret_cast<Code*>(stage);  // [32][key pitch]
  float* probs_s = reinterpret_cast<float*>(stage);    // [32][QP], once the tile's keys are scored
  Code* value_codes_s = reinterpret_cast<Code*>(stage + key_stage);  // [32][value_groups]
  const int key_pitch = coupled_key_pitch(p, sizeof(Code)) / static_cast<int>(sizeof(Code));
  const int span = kLaneChannels / min(p.value_channels, kLaneChannels);
  const int first_page = split * p.pages_per_split, last_page = min(first_page + p.pages_per_split, p.n_pages);
  const int first_key = first_page * p.page_tokens, end_key = max(first_page, last_page) * p.page_tokens;
  const uint8_t* const* key_pages = p.key_pages + static_cast<size_t>(stream) * p.n_pages;
  const uint8_t* const* value_pages = p.value_pages + static_cast<size_t>(stream) * p.n_pages;
  const float* key_centroids = p.key_centroids[stream];
  {
    const float* value_centroids = p.value_centroids[stream];
    for (int i = tid; i < D * value_codes; i += blockDim.x) value_centroid_s[i] = __float2bfloat16_rn(value_centroids[i]);
  }

  for (int q0 = 0; q0 < n_queries; q0 += QP) {
    __syncthreads();  // the previous pass's states are read
    for (int i = tid; i < QP * D; i += blockDim.x) {
      const int q = q0 + i / D;
      query_s[i] = q < n_queries ? queries[(static_cast<size_t>(stream) * n_queries + q) * D + i % D] * scale * kLog2e : 0.f;
    }
    __syncthreads();
    for (int i = tid; i < key_entries; i += blockDim.x) {
      const int g = i / key_codes;
      const float* c = key_centroids + static_cast<size_t>(i) * p.key_channels;
      float s[QP] = {};
      for (int j = 0; j < p.key_channels; ++j) {
        const float cj = __ldg(c + j);
#pragma unroll
        for (int q = 0; q < QP; ++q) s[q] += query_s[q * D + g * p.key_channels + j] * cj;
      }
#pragma unroll
      for (int q = 0; q < QP; ++q) table[i * QP + q] = s[q];
    }
    __syncthreads();

    float top[QP], sum[QP], acc[QP][kLaneChannels];  // the warp's running maximum, this lane's part of the sum, its channels
#pragma unroll
    for (int q = 0; q < QP; ++q) {
      top[q] = -INFINITY, sum[q] = 0.f;
#pragma unroll
      for (int k = 0; k < kLaneChannels; ++k) acc[q][k] = 0.f;
    }
    for (int tile = first_key + warp * kCoupledTileKeys; tile < end_key; tile += warps * kCoupledTileKeys) {
      const int row0 = tile % p.page_tokens, page = tile / p.page_tokens;
      __syncwarp();  // the previous tile's probabilities and value codes are read
      stage_tile_codes<Code>(key_pages[page], row0 * key_groups, key_groups, p.key_bits, key_codes_s, key_pitch, lane);
      stage_tile_codes<Code>(value_pages[page], row0 * value_groups, value_groups, p.value_bits, value_codes_s, value_groups, lane);
      __syncwarp();
      float s[QP];  // a key per lane
      key_scores<QP, Code>(table, key_codes_s + lane * key_pitch, key_groups, p.key_bits, s);
      float prob[QP];
#pragma unroll
      for (int q = 0; q < QP; ++q) {
        float m = s[q];
        for (int o = 16; o > 0; o >>= 1) m = fmaxf(m, __shfl_xor_sync(0xffffffffu, m, o));
        const float next = fmaxf(top[q], m), alpha = fast_exp2(top[q] - next);  // 0 while nothing was seen
        top[q] = next;
        prob[q] = fast_exp2(s[q] - next);
        sum[q] = sum[q] * alpha + prob[q];
#pragma unroll
        for (int k = 0; k < kLaneChannels; ++k) acc[q][k] *= alpha;
      }
      __syncwarp();  // every lane has read its key codes: the probabilities take their place
#pragma unroll
      for (int q = 0; q < QP; ++q) probs_s[lane * QP + q] = prob[q];
      __syncwarp();
      switch (span) {
        case 1:
          accumulate_values<1, QP, D>(probs_s, value_codes_s, value_groups, value_centroid_s, value_codes, p.value_channels, lane, acc);
          break;
        case 2:
          accumulate_values<2, QP, D>(probs_s, value_codes_s, value_groups, value_centroid_s, value_codes, p.value_channels, lane, acc);
          break;
        default:  // 4: single channels, D = 128
          if constexpr (kLaneChannels % 4 == 0)
            accumulate_values<4, QP, D>(probs_s, value_codes_s, value_groups, value_centroid_s, value_codes, p.value_channels, lane, acc);
      }
    }
#pragma unroll
    for (int q = 0; q < QP; ++q)
      for (int o = 16; o > 0; o >>= 1) sum[q] += __shfl_xor_sync(0xffffffffu, sum[q], o);

    // The warps' states (maximum, sum, channels) replace the key table, then merge per channel.
    __syncthreads();
    float* state = table + static_cast<size_t>(warp) * QP * (D + 2);  // [QP][top, sum, D channels]
#pragma unroll
    for (int q = 0; q < QP; ++q) {
      if (lane == 0) state[q * (D + 2)] = top[q], state[q * (D + 2) + 1] = sum[q];
#pragma unroll
      for (int k = 0; k < kLaneChannels; ++k) state[q * (D + 2) + 2 + lane_channel<D>(lane, span, k)] = acc[q][k];
    }
    __syncthreads();
    for (int i = tid; i < QP * D; i += blockDim.x) {
      const int q = i / D, c = i % D;
      if (q0 + q >= n_queries) continue;
      float m = -INFINITY;
      for (int w = 0; w < warps; ++w) m = fmaxf(m, table[(static_cast<size_t>(w) * QP + q) * (D + 2)]);
      float l = 0.f, o = 0.f;
      if (m != -INFINITY)
        for (int w = 0; w < warps; ++w) {
          const float* ws = table + (static_cast<size_t>(w) * QP + q) * (D + 2);
          const float weight = fast_exp2(ws[0] - m);
          l += ws[1] * weight, o += ws[2 + c] * weight;
        }
      const size_t out_row = (static_cast<size_t>(split) * streams + stream) * n_queries + q0 + q;
      split_out[out_row * D + c] = l > 0.f ? o / l : 0.f;
      if (c == 0) split_lse[out_row] = l > 0.f ? (m + log2f(l)) / kLog2e : -INFINITY;
    }
  }
}

}  // namespace ringkv::kernels
