#pragma once
// Causal prefill attention for head_dim 128 on Hopper's warpgroup tensor cores (wgmma, sm_90): the
// same online softmax and (out, lse) as prefill_attention_kernel (kernels/prefill_attention.cuh),
// with both products issued a whole warpgroup at a time. A block of two warpgroups takes 128
// queries of one head (64 per group) and walks the key tiles of 128 it can see:
//   scores  S = Q K^T: m64n128k16 with Q and K both read from shared memory (K-major);
//   values  O += P V: m64n128k16 with P from the score registers (bf16) and V read from shared
//           memory as stored, row-major by key (an MN-major B operand).
// Queries, keys and values land in shared memory by cp.async in the 128-byte swizzled layout the
// tensor cores read; the next key and value tiles are in flight while the current ones are used.
// Blocks start from the last queries, which see the most keys, so that the short blocks fill the tail.
#include <cuda_bf16.h>

#include <cstdint>

#include "kernels/copy_async.cuh"
#include "kernels/prefill_attention.cuh"
#include "kernels/wgmma.cuh"

namespace ringkv::kernels {

constexpr int kWgmmaQueries = 128, kWgmmaKeys = 128, kWgmmaThreads = 256, kWgmmaDim = 128;
// A tile of 128 rows of 128 bf16 channels: two halves of 64 channels (128-byte rows), 16 KiB each.
constexpr uint32_t kWgmmaHalfBytes = 128 * 128, kWgmmaTileBytes = 2 * kWgmmaHalfBytes;
// The queries, then three stages of (keys, values); 1 KiB more to align the start to a swizzle atom.
constexpr int kWgmmaStages = 3;
constexpr size_t kWgmmaSharedBytes = kWgmmaTileBytes * (1 + 2 * kWgmmaStages) + 1024;

// 128 rows of 128 bf16 channels into a swizzled tile: row r from rows + r * stride (elements),
// zero-filled where !valid(r); every thread of the block takes part. A thread copies the same
// 16-byte chunk of every 16th row: rows 16 apart share the swizzle phase, so its addresses step by
// constants.
template <typename Valid>
__device__ inline void copy_rows_swizzled(uint8_t* tile, const uint16_t* rows, size_t stride, Valid valid) {
  constexpr int kRowsPerPass = kWgmmaThreads / 16;
  const int row = threadIdx.x / 16, chunk = threadIdx.x % 16;  // 16-byte chunk of the row's 256 bytes
  uint8_t* dst = tile + (chunk / 8) * kWgmmaHalfBytes + swizzled_128(row, chunk % 8);
  const uint16_t* src = rows + row * stride + chunk * 8;
#pragma unroll
  for (int pass = 0; pass < 128 / kRowsPerPass; ++pass) {
    const bool ok = valid(row + pass * kRowsPerPass);
    copy_async_16(dst + pass * kRowsPerPass * 128, ok ? src + pass * kRowsPerPass * stride : rows, ok);
  }
}

static __global__ void __launch_bounds__(kWgmmaThreads, 1)
    prefill_attention_wgmma_kernel(PrefillShape s, const uint16_t* __restrict__ q, const uint16_t* __restrict__ k,
                                   const uint16_t* __restrict__ v, float* __restrict__ out, float* __restrict__ lse) {
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)  // wgmma: sm_90a only
  constexpr int D = kWgmmaDim, kKeyTiles = kWgmmaKeys / 8, kOutTiles = D / 8;
  extern __shared__ uint8_t shared_raw[];
  // The swizzle works on shared-memory addresses: align the shared address itself.
  uint8_t* shared = shared_raw + ((1024 - (static_cast<uint32_t>(__cvta_generic_to_shared(shared_raw)) & 1023)) & 1023);
  uint8_t* queries_s = shared;
  auto keys_s = [&](int b) { return shared + kWgmmaTileBytes * (1 + 2 * b); };
  auto values_s = [&](int b) { return shared + kWgmmaTileBytes * (2 + 2 * b); };

  const int group = threadIdx.x / 128, warp = threadIdx.x % 128 / 32, lane = threadIdx.x % 32, g = lane / 4, t = lane % 4;
  const int head = blockIdx.y, kv_head = head / (s.heads / s.kv_heads);
  const int first_query = (gridDim.x - 1 - blockIdx.x) * kWgmmaQueries;
  const int warp_first = first_query + group * 64 + warp * 16;
  const int row0 = warp_first + g, row1 = row0 + 8;
  const float scale_log2 = s.scale * 1.4426950408889634f;

  copy_rows_swizzled(queries_s, q + (static_cast<size_t>(first_query) * s.heads + head) * D, static_cast<size_t>(s.heads) * D,
                     [&](int r) { return first_query + r < s.n_queries; });
  copy_async_commit();

  float o[kOutTiles][4] = {};
  float m0 = -INFINITY, m1 = -INFINITY, l0 = 0.f, l1 = 0.f;
  const int last_query = min(first_query + kWgmmaQueries, s.n_queries) - 1;
  const int key_end = min(s.n_keys, s.q_offset + last_query + 1);
  const int key_begin =
      s.view == PrefillView::kOpenPage ? prefill_page_start(s, s.q_offset + first_query) / kWgmmaKeys * kWgmmaKeys : 0;
  const int tiles = key_end > key_begin ? (key_end - key_begin + kWgmmaKeys - 1) / kWgmmaKeys : 0;
  // Tile x (keys from key_begin + 128x) into stage x % 3.
  auto load_tile = [&](int x) {
    const int kb = key_begin + x * kWgmmaKeys;
    const size_t at = (static_cast<size_t>(kb) * s.kv_heads + kv_head) * D, stride = static_cast<size_t>(s.kv_heads) * D;
    const auto valid = [&](int r) { return kb + r < s.n_keys; };
    copy_rows_swizzled(keys_s(x % kWgmmaStages), k + at, stride, valid);
    copy_rows_swizzled(values_s(x % kWgmmaStages), v + at, stride, valid);
    copy_async_commit();
  };
  const uint32_t queries_at = static_cast<uint32_t>(__cvta_generic_to_shared(queries_s)) + group * 64 * 128;
  // S = Q K^T of tile x over 8 steps of 16 channels (step ks is 32 bytes into the rows of half
  // ks / 4), issued and committed, not waited for.
  auto issue_scores = [&](float (&sc)[kKeyTiles][4], int x) {
    const uint32_t keys_at = static_cast<uint32_t>(__cvta_generic_to_shared(keys_s(x % kWgmmaStages)));
    wgmma_fence();
#pragma unroll
    for (int ks = 0; ks < D / 16; ++ks) {
      const uint32_t offset = (ks / 4) * kWgmmaHalfBytes + (ks % 4) * 32;
      wgmma_m64n128k16_ss(sc, smem_descriptor(queries_at + offset, 16, 1024), smem_descriptor(keys_at + offset, 16, 1024), ks > 0);
    }
    wgmma_commit();
  };
  // The softmax step of tile x's scores, their probabilities into p as A fragments (16 keys each).
  auto softmax = [&](float (&sc)[kKeyTiles][4], int x, uint32_t (&p)[kWgmmaKeys / 16][4]) {
    const int kb = key_begin + x * kWgmmaKeys;
    const bool whole = prefill_tile_seen_whole(s, kb, kWgmmaKeys, s.q_offset + warp_first);
    const float2 alpha = prefill_softmax_step(s, kb, whole, row0, row1, t, scale_log2, sc, m0, m1, l0, l1);
#pragma unroll
    for (int j = 0; j < kWgmmaKeys / 16; ++j) probabilities_fragment(sc, j, p[j]);
    return alpha;
  };

  // Pipelined as flash-attention 3 does within a warpgroup: while the tensor cores multiply tile
  // x's probabilities by its values, they also compute tile x + 1's scores, whose softmax runs as
  // soon as those are in; the output is rescaled once the value product is done. Three stages: tile
  // x + 2 is copied in while x's values and x + 1's keys are read.
  uint32_t p[kWgmmaKeys / 16][4];
  if (tiles > 0) {
    load_tile(0);
    copy_async_wait<0>();
    fence_async_shared();
    __syncthreads();
    if (tiles > 1) load_tile(1);
    float sc[kKeyTiles][4];
    issue_scores(sc, 0);
    wgmma_wait<0>();
    hold_registers(sc);
    softmax(sc, 0, p);  // the output is still zero: nothing to rescale
  }
  // O += P V of tile x over 8 steps of 16 keys (step j starts 16 rows, 2 KiB, into the value tile;
  // the second half of the channels is kWgmmaHalfBytes on), issued and committed.
  auto issue_values = [&](int x) {
    const uint32_t values_at = static_cast<uint32_t>(__cvta_generic_to_shared(values_s(x % kWgmmaStages)));
    hold_registers(o);
    hold_registers(p);
    wgmma_fence();
#pragma unroll
    for (int j = 0; j < kWgmmaKeys / 16; ++j)
      wgmma_m64n128k16_rs_mn(o, p[j], smem_descriptor(values_at + j * 16 * 128, kWgmmaHalfBytes, 1024));
    wgmma_commit();
  };
  // One branch per iteration holds every asynchronous product and the reads of their results:
  // where they sit in separate branches, ptxas cannot see that no accumulator is read early and
  // serializes the products.
  for (int x = 0; x < tiles; ++x) {
    float2 alpha{1.f, 1.f};
    uint32_t p_next[kWgmmaKeys / 16][4];
    if (x + 1 < tiles) {
      copy_async_wait<0>();  // tile x + 1
      fence_async_shared();
      __syncthreads();  // every group is past tile x - 1's value product: its stage takes tile x + 2
      if (x + 2 < tiles) load_tile(x + 2);
      float sc[kKeyTiles][4];
      issue_scores(sc, x + 1);
      issue_values(x);
      wgmma_wait<1>();  // the scores are in; the value product may still run
      hold_registers(sc);
      alpha = softmax(sc, x + 1, p_next);
    } else {
      issue_values(x);
    }
    wgmma_wait<0>();
    hold_registers(o);
    hold_registers(p);
    if (x + 1 < tiles) {
      rescale_rows(o, alpha);
#pragma unroll
      for (int j = 0; j < kWgmmaKeys / 16; ++j)
#pragma unroll
        for (int r = 0; r < 4; ++r) p[j][r] = p_next[j][r];
    }
  }
  copy_async_wait<0>();
  prefill_store_rows<D>(s, head, row0, row1, t, m0, m1, l0, l1, o, out, lse);
#endif
}

}  // namespace ringkv::kernels
