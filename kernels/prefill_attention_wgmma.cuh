#pragma once
// Causal prefill attention for head_dim 128 on Hopper's warpgroup tensor cores (wgmma, sm_90): the
// same online softmax and (out, lse) as prefill_attention_kernel (kernels/prefill_attention.cuh),
// with both products issued a whole warpgroup at a time. A block takes 128 queries of one head and
// walks the key tiles of 128 it can see, in three warpgroups with one job each, as flash-attention 3
// does: the first only issues TMA copies (the queries once, then each key and value tile into one of
// three stages as soon as both consumers have freed it) and gives its registers to the other two,
// which take 64 queries each and take turns at the tensor cores:
//   scores  S = Q K^T: m64n128k16 with Q and K both read from shared memory (K-major);
//   values  O += P V: m64n128k16 with P from the score registers (bf16) and V read from shared
//           memory as stored, row-major by key (an MN-major B operand).
// Tiles land in the 128-byte swizzled layout the tensor cores read, rows past the end as zeros.
// Blocks start from the last queries, which see the most keys, so that the short blocks fill the tail.
#include <cuda.h>
#include <cuda_bf16.h>

#include <cstdint>

#include "kernels/prefill_attention.cuh"
#include "kernels/tma.cuh"
#include "kernels/wgmma.cuh"

namespace ringkv::kernels {

constexpr int kWgmmaQueries = 128, kWgmmaKeys = 128, kWgmmaDim = 128;
// A copying warpgroup, then two computing ones; setmaxnreg splits the 64K registers 24 / 240 / 240.
constexpr int kWgmmaThreads = 384, kWgmmaCopyRegisters = 24, kWgmmaComputeRegisters = 240;
// setmaxnreg.inc waits for registers the others gave back: the split must fit what ptxas gives the
// block at launch (168 a thread, 65536 / 384 rounded down to 8).
static_assert(128 * (kWgmmaCopyRegisters + 2 * kWgmmaComputeRegisters) <= kWgmmaThreads * 168);
// A tile of 128 rows of 128 bf16 channels: two halves of 64 channels (128-byte rows), 16 KiB each.
constexpr uint32_t kWgmmaHalfBytes = 128 * 128, kWgmmaTileBytes = 2 * kWgmmaHalfBytes;
constexpr int kWgmmaStages = 3;
// What the warpgroups wait on: the queries in; per stage, its keys in, its values in, and the stage
// free again (a lane of each of the 8 computing warps arrives once its value product is done).
struct WgmmaBarriers {
  uint64_t queries, keys[kWgmmaStages], values[kWgmmaStages], free[kWgmmaStages];
};
constexpr int kWgmmaFreeArrivals = 8;
// The queries, three stages of (keys, values), the barriers; 1 KiB more to align the start to a swizzle atom.
constexpr size_t kWgmmaSharedBytes = kWgmmaTileBytes * (1 + 2 * kWgmmaStages) + sizeof(WgmmaBarriers) + 1024;

// q_map: the queries [n_queries][heads][128]; k_map, v_map: keys and values [n_keys][kv_heads][128]
// (kernels/tensor_map.hpp).
static __global__ void __launch_bounds__(kWgmmaThreads, 1)
    prefill_attention_wgmma_kernel(PrefillShape s, const __grid_constant__ CUtensorMap q_map,
                                   const __grid_constant__ CUtensorMap k_map, const __grid_constant__ CUtensorMap v_map,
                                   float* __restrict__ out, float* __restrict__ lse) {
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)  // wgmma, setmaxnreg: sm_90a only
  constexpr int D = kWgmmaDim, kKeyTiles = kWgmmaKeys / 8, kOutTiles = D / 8;
  extern __shared__ uint8_t shared_raw[];
  // The swizzle works on shared-memory addresses: align the shared address itself.
  uint8_t* shared = shared_raw + ((1024 - (shared_address(shared_raw) & 1023)) & 1023);
  uint8_t* queries_s = shared;
  auto keys_s = [&](int b) { return shared + kWgmmaTileBytes * (1 + 2 * b); };
  auto values_s = [&](int b) { return shared + kWgmmaTileBytes * (2 + 2 * b); };
  WgmmaBarriers& bar = *reinterpret_cast<WgmmaBarriers*>(shared + kWgmmaTileBytes * (1 + 2 * kWgmmaStages));

  const int head = blockIdx.y, kv_head = head / (s.heads / s.kv_heads);
  const int first_query = (gridDim.x - 1 - blockIdx.x) * kWgmmaQueries;
  const int last_query = min(first_query + kWgmmaQueries, s.n_queries) - 1;
  const int key_end = min(s.n_keys, s.q_offset + last_query + 1);
  const int key_begin =
      s.view == PrefillView::kOpenPage ? prefill_page_start(s, s.q_offset + first_query) / kWgmmaKeys * kWgmmaKeys : 0;
  const int tiles = key_end > key_begin ? (key_end - key_begin + kWgmmaKeys - 1) / kWgmmaKeys : 0;

  if (threadIdx.x == 0) {
    barrier_init(&bar.queries, 1);
    for (int b = 0; b < kWgmmaStages; ++b) {
      barrier_init(&bar.keys[b], 1);
      barrier_init(&bar.values[b], 1);
      barrier_init(&bar.free[b], kWgmmaFreeArrivals);
    }
    barrier_init_fence();
  }
  __syncthreads();  // the last block-wide barrier: the copying warpgroup leaves early

  if (threadIdx.x < 128) {  // the copying warpgroup: one thread issues every copy
    registers_decrease_to<kWgmmaCopyRegisters>();
    if (threadIdx.x == 0) {
      // Tile halves: channels 0-63 and 64-127, each 128 rows of 128 bytes.
      auto load = [&](uint8_t* tile, const CUtensorMap& map, int row_head, int row, uint64_t& done) {
        barrier_expect_bytes(&done, kWgmmaTileBytes);
        tma_load_3d(tile, &map, 0, row_head, row, &done);
        tma_load_3d(tile + kWgmmaHalfBytes, &map, 64, row_head, row, &done);
      };
      load(queries_s, q_map, head, first_query, bar.queries);
      for (int x = 0; x < tiles; ++x) {
        const int b = x % kWgmmaStages, kb = key_begin + x * kWgmmaKeys;
        if (x >= kWgmmaStages) barrier_wait(&bar.free[b], (x / kWgmmaStages - 1) & 1);
        load(keys_s(b), k_map, kv_head, kb, bar.keys[b]);
        load(values_s(b), v_map, kv_head, kb, bar.values[b]);
      }
    }
    return;
  }
  registers_increase_to<kWgmmaComputeRegisters>();

  const int group = threadIdx.x / 128 - 1, warp = threadIdx.x % 128 / 32, lane = threadIdx.x % 32, g = lane / 4, t = lane % 4;
  const int warp_first = first_query + group * 64 + warp * 16;
  const int row0 = warp_first + g, row1 = row0 + 8;
  const float scale_log2 = s.scale * 1.4426950408889634f;
  float o[kOutTiles][4] = {};
  float m0 = -INFINITY, m1 = -INFINITY, l0 = 0.f, l1 = 0.f;
  // Tile x sits in stage x % 3, filled for the (x / 3)-th time: its barriers' phase parity.
  auto wait_keys = [&](int x) { barrier_wait(&bar.keys[x % kWgmmaStages], (x / kWgmmaStages) & 1); };
  auto wait_values = [&](int x) { barrier_wait(&bar.values[x % kWgmmaStages], (x / kWgmmaStages) & 1); };

  const uint32_t queries_at = shared_address(queries_s) + group * 64 * 128;
  // S = Q K^T of tile x over 8 steps of 16 channels (step ks is 32 bytes into the rows of half
  // ks / 4), issued and committed, not waited for.
  auto issue_scores = [&](float (&sc)[kKeyTiles][4], int x) {
    const uint32_t keys_at = shared_address(keys_s(x % kWgmmaStages));
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
  // soon as those are in; the output is rescaled once the value product is done.
  uint32_t p[kWgmmaKeys / 16][4];
  barrier_wait(&bar.queries, 0);
  if (tiles > 0) {
    float sc[kKeyTiles][4];
    wait_keys(0);
    issue_scores(sc, 0);
    wgmma_wait<0>();
    hold_registers(sc);
    softmax(sc, 0, p);  // the output is still zero: nothing to rescale
  }
  // O += P V of tile x over 8 steps of 16 keys (step j starts 16 rows, 2 KiB, into the value tile;
  // the second half of the channels is kWgmmaHalfBytes on), issued and committed.
  auto issue_values = [&](int x) {
    const uint32_t values_at = shared_address(values_s(x % kWgmmaStages));
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
  // The two groups take turns at the tensor cores (named barriers 1 and 2): one issues its products
  // while the other runs its softmax. The second group lets the first go first.
  const int my_turn = 1 + group, their_turn = 2 - group;
  if (group == 1 && tiles > 0) named_barrier_arrive(1, 256);
  for (int x = 0; x < tiles; ++x) {
    float2 alpha{1.f, 1.f};
    uint32_t p_next[kWgmmaKeys / 16][4];
    named_barrier_sync(my_turn, 256);
    if (x + 1 < tiles) {
      float sc[kKeyTiles][4];
      wait_keys(x + 1);
      issue_scores(sc, x + 1);
      wait_values(x);
      issue_values(x);
      named_barrier_arrive(their_turn, 256);
      wgmma_wait<1>();  // the scores are in; the value product may still run
      hold_registers(sc);
      alpha = softmax(sc, x + 1, p_next);
    } else {
      wait_values(x);
      issue_values(x);
      if (group == 0) named_barrier_arrive(their_turn, 256);  // the second group's last turn needs no answer
    }
    wgmma_wait<0>();
    hold_registers(o);
    hold_registers(p);
    // Tile x's keys (read by the last iteration's scores) and values are no longer needed.
    if (lane == 0) barrier_arrive(&bar.free[x % kWgmmaStages]);
    if (x + 1 < tiles) {
      rescale_rows(o, alpha);
#pragma unroll
      for (int j = 0; j < kWgmmaKeys / 16; ++j)
#pragma unroll
        for (int r = 0; r < 4; ++r) p[j][r] = p_next[j][r];
    }
  }
  prefill_store_rows<D>(s, head, row0, row1, t, m0, m1, l0, l1, o, out, lse);
#endif
}

}  // namespace ringkv::kernels
