#pragma once
// Causal prefill attention on tensor cores, flash-attention style: a block takes 128 queries of one
// head (16 per warp), walks the key blocks of 64 it can see with an online softmax, and never
// writes the score matrix out. Both products are mma.sync m16n8k16 (bf16 in, fp32 accumulate);
// the probabilities go from the score accumulators straight into the A fragments of the value
// product, whose B fragments come from the value rows through ldmatrix.trans. The next key and
// value tiles are copied in (cp.async, double buffered) while the current ones are used. Blocks
// wholly below the diagonal skip the mask. Returns (out, lse), which merge with other chunks' and ranks' states.
#include <cuda_bf16.h>

#include <cstdint>

#include "kernels/copy_async.cuh"
#include "kernels/fast_exp2.cuh"
#include "kernels/mma.cuh"
#include "kernels/prefill_attention.hpp"

namespace ringkv::kernels {

constexpr int kPrefillQueries = 128, kPrefillKeys = 64, kPrefillThreads = 256, kPrefillPad = 8;

// Two buffers of key and value tiles, then the block's queries.
template <int D>
constexpr size_t prefill_shared_bytes() {
  return (size_t{2} * 2 * kPrefillKeys + kPrefillQueries) * (D + kPrefillPad) * sizeof(uint16_t);
}

__device__ inline uint32_t pack_bf16(float lo, float hi) {
  const __nv_bfloat162 v = __floats2bfloat162_rn(lo, hi);
  return *reinterpret_cast<const uint32_t*>(&v);
}

// Whether every key of the tile [kb, kb + keys) is seen by every query row of a warp whose first
// row is at `position` (below the diagonal, or below that row's page in the sealed-page view): then
// no mask is needed.
__device__ inline bool prefill_tile_seen_whole(const PrefillShape& s, int kb, int keys, int position) {
  const int seen_below = s.view == PrefillView::kCausal       ? position + 1
                         : s.view == PrefillView::kSealedPages ? prefill_page_start(s, position)
                                                               : 0;
  return kb + keys <= s.n_keys && kb + keys <= seen_below;
}

// One tile's step of a thread's online softmax over its two query rows (row0, row1 = row0 + 8):
// sc holds the tile's scores as m16n8 C fragments, one [4] per 8 keys from kb (keys 8nt + 2t and
// + 1), unscaled. Masks what the rows do not see (unless `whole`), moves the running maxima m (in
// log2 units: scores times scale_log2), rescales the sums l, and leaves the probabilities in sc (a
// row's four threads agree on m; l holds this thread's share). Returns the factors of the rows'
// output accumulators.
template <int KEY_TILES>
__device__ float2 prefill_softmax_step(const PrefillShape& s, int kb, bool whole, int row0, int row1, int t, float scale_log2,
                                       float (&sc)[KEY_TILES][4], float& m0, float& m1, float& l0, float& l1) {
  // One uniform branch around the mask: tested per element, `whole` would cost a branch each.
  if (!whole)
#pragma unroll
    for (int nt = 0; nt < KEY_TILES; ++nt)
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        const int key = kb + nt * 8 + 2 * t + (e & 1), row = e < 2 ? row0 : row1;
        sc[nt][e] = prefill_sees(s, s.q_offset + row, key) ? sc[nt][e] : -INFINITY;
      }
  // The maxima of the raw scores, scaled once: the scale (positive) goes into each exponent's FFMA.
  float mx0 = -INFINITY, mx1 = -INFINITY;
#pragma unroll
  for (int nt = 0; nt < KEY_TILES; ++nt)
    mx0 = fmaxf(mx0, fmaxf(sc[nt][0], sc[nt][1])), mx1 = fmaxf(mx1, fmaxf(sc[nt][2], sc[nt][3]));
#pragma unroll
  for (int off = 1; off < 4; off <<= 1) {
    mx0 = fmaxf(mx0, __shfl_xor_sync(0xffffffffu, mx0, off));
    mx1 = fmaxf(mx1, __shfl_xor_sync(0xffffffffu, mx1, off));
  }
  mx0 = fmaxf(m0, mx0 * scale_log2), mx1 = fmaxf(m1, mx1 * scale_log2);
  const float base0 = mx0 == -INFINITY ? 0.f : mx0, base1 = mx1 == -INFINITY ? 0.f : mx1;
  const float alpha0 = fast_exp2(m0 - base0), alpha1 = fast_exp2(m1 - base1);  // 0 while nothing was seen
  m0 = mx0, m1 = mx1;
  l0 *= alpha0, l1 *= alpha1;
#pragma unroll
  for (int nt = 0; nt < KEY_TILES; ++nt) {
    sc[nt][0] = fast_exp2(fmaf(sc[nt][0], scale_log2, -base0)), sc[nt][1] = fast_exp2(fmaf(sc[nt][1], scale_log2, -base0));
    sc[nt][2] = fast_exp2(fmaf(sc[nt][2], scale_log2, -base1)), sc[nt][3] = fast_exp2(fmaf(sc[nt][3], scale_log2, -base1));
    l0 += sc[nt][0] + sc[nt][1], l1 += sc[nt][2] + sc[nt][3];
  }
  return {alpha0, alpha1};
}

// Output fragments of the two rows times their factors.
template <int OUT_TILES>
__device__ inline void rescale_rows(float (&o)[OUT_TILES][4], float2 alpha) {
#pragma unroll
  for (int dt = 0; dt < OUT_TILES; ++dt) o[dt][0] *= alpha.x, o[dt][1] *= alpha.x, o[dt][2] *= alpha.y, o[dt][3] *= alpha.y;
}

// The probabilities of keys 16j to 16j + 15 (score fragments 2j, 2j + 1) as an A fragment in bf16.
template <int KEY_TILES>
__device__ inline void probabilities_fragment(const float (&sc)[KEY_TILES][4], int j, uint32_t (&a)[4]) {
  a[0] = pack_bf16(sc[2 * j][0], sc[2 * j][1]), a[1] = pack_bf16(sc[2 * j][2], sc[2 * j][3]);
  a[2] = pack_bf16(sc[2 * j + 1][0], sc[2 * j + 1][1]), a[3] = pack_bf16(sc[2 * j + 1][2], sc[2 * j + 1][3]);
}

// Writes a thread's two finished rows (channels 8dt + 2t, + 1 of o) and their lse, merging into the
// state already there when s.accumulate: every thread of a row reads the row's prior lse before
// its first thread overwrites it. Rows at or past n_queries are skipped.
template <int D>
__device__ void prefill_store_rows(const PrefillShape& s, int head, int row0, int row1, int t, float m0, float m1, float l0,
                                   float l1, const float (&o)[D / 8][4], float* __restrict__ out, float* __restrict__ lse) {
#pragma unroll
  for (int off = 1; off < 4; off <<= 1) {
    l0 += __shfl_xor_sync(0xffffffffu, l0, off);
    l1 += __shfl_xor_sync(0xffffffffu, l1, off);
  }
  const float ln2 = 0.6931471805599453f;
  float prior[2] = {-INFINITY, -INFINITY};
  if (s.accumulate)
#pragma unroll
    for (int half = 0; half < 2; ++half) {
      const int row = half ? row1 : row0;
      if (row < s.n_queries) prior[half] = lse[static_cast<size_t>(row) * s.heads + head];
    }
  __syncwarp();
#pragma unroll
  for (int half = 0; half < 2; ++half) {
    const int row = half ? row1 : row0;
    const float l = half ? l1 : l0, m = half ? m1 : m0;
    if (row >= s.n_queries) continue;
    const size_t at = static_cast<size_t>(row) * s.heads + head;
    const float mine = l > 0.f ? m * ln2 + logf(l) : -INFINITY, merged = fmaxf(mine, prior[half]);
    const float w_mine = merged == -INFINITY ? 0.f : expf(mine - merged);
    const float w_prior = merged == -INFINITY ? 0.f : expf(prior[half] - merged), total = w_mine + w_prior;
    const float to_mine = l > 0.f ? w_mine / (total * l) : 0.f, to_prior = prior[half] > -INFINITY ? w_prior / total : 0.f;
#pragma unroll
    for (int dt = 0; dt < D / 8; ++dt) {
      float2* o_at = reinterpret_cast<float2*>(out + at * D + dt * 8 + 2 * t);
      const float2 before = to_prior > 0.f ? *o_at : make_float2(0.f, 0.f);
      *o_at = make_float2(o[dt][2 * half] * to_mine + before.x * to_prior, o[dt][2 * half + 1] * to_mine + before.y * to_prior);
    }
    if (t == 0) lse[at] = merged == -INFINITY ? -INFINITY : merged + logf(total);
  }
}

template <int D>
__global__ void __launch_bounds__(kPrefillThreads, 2) prefill_attention_kernel(PrefillShape s, const uint16_t* __restrict__ q,
                                                                             const uint16_t* __restrict__ k,
                                                                             const uint16_t* __restrict__ v,
                                                                             float* __restrict__ out, float* __restrict__ lse) {
  constexpr int kSteps = D / 16, kOutTiles = D / 8, kScoreTiles = kPrefillKeys / 8;
  // Dynamic shared memory: [buffer][key][channel] for keys, then the same for values.
  extern __shared__ __align__(16) uint16_t shared[];
  using Tile = uint16_t[kPrefillKeys][D + kPrefillPad];
  Tile* keys_buf = reinterpret_cast<Tile*>(shared);
  Tile* values_buf = keys_buf + 2;
  auto queries_s = reinterpret_cast<uint16_t(*)[D + kPrefillPad]>(values_buf + 2);  // [kPrefillQueries][D + pad]

  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, g = lane / 4, t = lane % 4;
  const int head = blockIdx.y, kv_head = head / (s.heads / s.kv_heads);
  const int first_query = blockIdx.x * kPrefillQueries;
  const int row0 = first_query + warp * 16 + g, row1 = row0 + 8;  // this thread's two query rows
  const float scale_log2 = s.scale * 1.4426950408889634f;

  // The block's queries into shared memory (zero past the last query); warps read their 16 rows as
  // A fragments through ldmatrix, which keeps registers for two blocks per multiprocessor.
  for (int i = threadIdx.x; i < kPrefillQueries * D / 8; i += kPrefillThreads) {
    const int row = i / (D / 8), c8 = i % (D / 8) * 8, query = first_query + row;
    const size_t at = (static_cast<size_t>(min(query, s.n_queries - 1)) * s.heads + head) * D + c8;
    copy_async_16(&queries_s[row][c8], q + at, query < s.n_queries);
  }
  copy_async_commit();

  float o[kOutTiles][4] = {};
  float m0 = -INFINITY, m1 = -INFINITY, l0 = 0.f, l1 = 0.f;  // log2-domain running max, partial sums
  const int last_query = min(first_query + kPrefillQueries, s.n_queries) - 1;
  const int key_end = min(s.n_keys, s.q_offset + last_query + 1);
  // The open-page view sees nothing below the first query's page.
  const int key_begin = s.view == PrefillView::kOpenPage
                            ? prefill_page_start(s, s.q_offset + first_query) / kPrefillKeys * kPrefillKeys : 0;
  // Key and value rows of the tile at kb into buffer b, 16 bytes (8 channels) per copy.
  auto load_tile = [&](int kb, int b) {
    for (int i = threadIdx.x; i < kPrefillKeys * D / 8; i += kPrefillThreads) {
      const int key = i / (D / 8), c8 = i % (D / 8) * 8, pos = kb + key;
      const size_t at = (static_cast<size_t>(min(pos, max(s.n_keys - 1, 0))) * s.kv_heads + kv_head) * D + c8;
      copy_async_16(&keys_buf[b][key][c8], k + at, pos < s.n_keys);
      copy_async_16(&values_buf[b][key][c8], v + at, pos < s.n_keys);
    }
    copy_async_commit();
  };
  if (key_end > key_begin) load_tile(key_begin, 0);
  for (int kb = key_begin, b = 0; kb < key_end; kb += kPrefillKeys, b ^= 1) {
    if (kb + kPrefillKeys < key_end) {
      load_tile(kb + kPrefillKeys, b ^ 1);
      copy_async_wait<1>();  // this tile has landed; the next one is in flight
    } else {
      copy_async_wait<0>();
    }
    __syncthreads();
    const Tile& keys_s = keys_buf[b];
    const Tile& values_s = values_buf[b];

    float sc[kScoreTiles][4] = {};
#pragma unroll
    for (int ks = 0; ks < kSteps; ks += 2) {  // two k-steps per load
      uint32_t qa[2][4];
#pragma unroll
      for (int h = 0; h < 2; ++h)
        load_tiles_x4<false>(qa[h], &queries_s[warp * 16 + lane % 8 + (lane / 8) % 2 * 8][(ks + h) * 16 + lane / 16 * 8]);
#pragma unroll
      for (int nt = 0; nt < kScoreTiles; ++nt) {
        uint32_t b[4];
        load_tiles_x4<false>(b, &keys_s[nt * 8 + lane % 8][(ks + lane / 16) * 16 + (lane / 8) % 2 * 8]);
        mma_16816<true>(sc[nt], qa[0], b[0], b[1]);
        mma_16816<true>(sc[nt], qa[1], b[2], b[3]);
      }
    }
    const bool whole = prefill_tile_seen_whole(s, kb, kPrefillKeys, s.q_offset + first_query + warp * 16);
    rescale_rows(o, prefill_softmax_step(s, kb, whole, row0, row1, t, scale_log2, sc, m0, m1, l0, l1));
    // Probabilities as A fragments (16 keys per step) times the values.
#pragma unroll
    for (int j = 0; j < kPrefillKeys / 16; ++j) {
      uint32_t a[4];
      probabilities_fragment(sc, j, a);
#pragma unroll
      for (int dt = 0; dt < kOutTiles; dt += 2) {  // two channel tiles per load
        uint32_t b[4];
        load_tiles_x4<true>(b, &values_s[j * 16 + lane % 16][(dt + lane / 16) * 8]);
        mma_16816<true>(o[dt], a, b[0], b[1]);
        mma_16816<true>(o[dt + 1], a, b[2], b[3]);
      }
    }
    __syncthreads();
  }

  copy_async_wait<0>();  // nothing left in flight, also when no key was visible
  prefill_store_rows<D>(s, head, row0, row1, t, m0, m1, l0, l1, o, out, lse);
}

}  // namespace ringkv::kernels
