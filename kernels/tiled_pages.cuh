#pragma once
// The GPU kernels over pages read into a shared tile, whatever their codec (a Reader: KVQuant, RVQ),
// and their host launchers:
// - decoding pages into bf16 rows (keys turned to their positions), the rows prefill attends to;
// - decode attention over pages read in place, flash-decoding style: a block takes a run of pages
//   of one stream; per page it reads the keys into an fp16 tile as stored, turns pre-RoPE keys to
//   their positions there, scores them against the queries on tensor cores (mma.sync m16n8k16, fp16
//   operands, fp32 accumulation), then reads the values into the same memory (channel-major) and
//   accumulates probabilities times values on tensor cores, under an online softmax; the runs'
//   partial states and the bf16 tails merge afterwards. The CPU twin is partial_attention over the
//   codec's pages.
// A Reader has shared_bytes() (its shared scratch: tables and the like), pre_rope(), start(table,
// shared) (loads stream or KV head `table`'s tables, no synchronization) and read(page, position,
// keys, shared, tile) (synchronizes the block before writing the tile, and at the end).
#include "kernels/compiled_variants.hpp"
#include "kernels/cuda_check.hpp"
#include "kernels/decode_attention_int.cuh"
#include "kernels/decode_attention_tail_gpu.hpp"
#include "kernels/page_tile.cuh"
#include "kernels/tiled_pages_gpu.hpp"

namespace ringkv {

namespace kernels {

// grid: n_pages * kv_heads, page k of KV head h at k * kv_heads + h (its tables: table h), positions
// first_position + 128k on; block: kTileDim threads; dynamic shared memory: kFloatTileBytes +
// reader.shared_bytes(). rows [n_pages * 128][kv_heads][128] bf16.
template <typename Reader>
__global__ void __launch_bounds__(kTileDim) decode_pages_kernel(Reader reader, bool keys, const uint8_t* const* pages, int kv_heads,
                                                                int first_position, const float* __restrict__ inv_freq,
                                                                uint16_t* __restrict__ rows) {
  extern __shared__ __align__(16) unsigned char shared[];
  float* tile = reinterpret_cast<float*>(shared);
  unsigned char* reader_shared = shared + kFloatTileBytes;
  __shared__ float freq_s[kTileDim / 2];
  const int block = blockIdx.x, k = block / kv_heads, h = block % kv_heads, tid = threadIdx.x;
  const int position = first_position + k * kTileDim;
  reader.start(h, reader_shared);
  if (tid < kTileDim / 2) freq_s[tid] = inv_freq[tid];
  reader.read(pages[block], position, keys, reader_shared, FloatTile{tile});
  if (keys && reader.pre_rope()) {
    rotate_tile(FloatTile{tile}, position, 1.f, freq_s);
    __syncthreads();
  }
  uint16_t* out = rows + (static_cast<size_t>(k) * kTileDim * kv_heads + h) * kTileDim + tid;
  for (int t = 0; t < kTileDim; ++t)
    out[static_cast<size_t>(t) * kv_heads * kTileDim] = __bfloat16_as_ushort(__float2bfloat16_rn(tile[t * kTilePitch + tid]));
}

constexpr int kTileWarps = kTileDim / 32;
// Blocks of the attention kernel a multiprocessor holds: its static tiles (about 38 KB) allow no
// more, so registers may go up to a fifth of the file's share.
constexpr int kTiledBlocksPerMultiprocessor = 5;

// grid: (splits, streams); block: kTileDim threads; dynamic shared memory: reader.shared_bytes().
// key_pages, value_pages: [streams][n_pages] device pointers, page p at positions 128p on; queries
// [streams][NQ][128]; split_out [splits][streams][NQ][128], split_lse [splits][streams][NQ].
// Queries are the n (8, padded) of the score products and the m (16, padded) of the value products.
template <typename Reader, int NQ>
__global__ void __launch_bounds__(kTileDim, kTiledBlocksPerMultiprocessor) decode_attention_tiled_kernel(Reader reader, TiledPages pages, int pages_per_split,
                                                                          const float* __restrict__ queries, float scale,
                                                                          float* __restrict__ split_out,
                                                                          float* __restrict__ split_lse) {
  extern __shared__ __align__(16) unsigned char reader_shared[];
  constexpr int kN = kIntMaxQueries, kPad = 8;
  __shared__ __align__(16) __half tile[2 * kHalfTileWords];  // a page's keys, then its values
  const HalfTile<false> keys{tile};
  const HalfTile<true> values{tile};
  __shared__ __align__(16) __half q_h[kN][kTileDim + kPad];  // score B operand: [query][channel]
  __shared__ __align__(16) __half p_h[kN][kTileDim + kPad];  // value A operand: [query][token]
  __shared__ float freq_s[kTileDim / 2], max_s[kTileWarps][kN], sum_s[kTileWarps][kN];
  const int split = blockIdx.x, stream = blockIdx.y, streams = gridDim.y, tid = threadIdx.x;
  const int lane = tid & 31, warp = tid >> 5, group = lane >> 2, pair = (lane & 3) * 2;
  for (int i = tid; i < kN * (kTileDim + kPad); i += blockDim.x) {
    const int q = i / (kTileDim + kPad), c = i % (kTileDim + kPad);
    // Scaled before rounding to fp16, so that large queries do not overflow it.
    q_h[q][c] = __float2half(q < NQ && c < kTileDim ? scale * queries[(static_cast<size_t>(stream) * NQ + q) * kTileDim + c] : 0.f);
    p_h[q][c] = __float2half(0.f);
  }
  reader.start(stream, reader_shared);
  if (tid < kTileDim / 2) freq_s[tid] = pages.inv_freq[tid];
  const bool rotate = reader.pre_rope();

  // Running softmax state per query, the same in every thread; acc: the value products' fp32
  // fragments, this warp's 32 channels as 4 n-tiles (rows `group`: a query; `group` + 8: padding).
  float m[kN], l[kN], acc[4][4] = {};
#pragma unroll
  for (int q = 0; q < kN; ++q) m[q] = -INFINITY, l[q] = 0.f;
  const int first = split * pages_per_split, last = min(first + pages_per_split, pages.n_pages);
  for (int p = first; p < last; ++p) {
    const size_t at = static_cast<size_t>(stream) * pages.n_pages + p;
    const int position = p * kTileDim;
    // Keys (the read's synchronizations also order this page's tile after the last page's reads).
    reader.read(pages.key_pages[at], position, true, reader_shared, keys);
    if (rotate) {
      rotate_keys_tile(keys, position, freq_s);
      __syncthreads();
    }
    // Scores of this warp's 32 tokens (two m-tiles of 16) against the queries.
    float s[2][4] = {};
#pragma unroll
    for (int mt = 0; mt < 2; ++mt) {
      const int t0 = warp * 32 + mt * 16 + group;
#pragma unroll
      for (int kt = 0; kt < kTileDim / 16; ++kt) {
        const int w = kt * 8 + pair / 2;  // channels 2w, 2w + 1 (and 8 further on)
        const uint32_t a[4] = {keys.word(t0, w), keys.word(t0 + 8, w), keys.word(t0, w + 4), keys.word(t0 + 8, w + 4)};
        mma_16816(s[mt], a, *reinterpret_cast<const uint32_t*>(&q_h[group][2 * w]),
                  *reinterpret_cast<const uint32_t*>(&q_h[group][2 * w + 8]));
      }
    }
    // s[mt][0..1]: token warp*32 + mt*16 + group, queries pair and pair + 1; s[mt][2..3]: that token + 8.
#pragma unroll
    for (int j = 0; j < 2; ++j) {
      float mx = -INFINITY;
#pragma unroll
      for (int mt = 0; mt < 2; ++mt) {
        mx = fmaxf(mx, fmaxf(s[mt][j], s[mt][j + 2]));
      }
      for (int o = 4; o < 32; o <<= 1) mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, o));
      if (group == 0) max_s[warp][pair + j] = mx;
    }
    __syncthreads();  // the key tile is read; the page maxima are in
    float new_m[kN], rescale[kN];
#pragma unroll
    for (int q = 0; q < kN; ++q) {
      new_m[q] = m[q];
      for (int w = 0; w < kTileWarps; ++w) new_m[q] = fmaxf(new_m[q], max_s[w][q]);
      rescale[q] = __expf(m[q] - new_m[q]);  // 0 on the first page (m = -inf)
    }
#pragma unroll
    for (int j = 0; j < 2; ++j) {
      const int q = pair + j;
      const float q_max = select(new_m, q);
      float sum = 0.f;
#pragma unroll
      for (int mt = 0; mt < 2; ++mt)
#pragma unroll
        for (int r = 0; r < 2; ++r) {
          // The sum takes the probability as the value product will, rounded to fp16.
          const __half e = __float2half(q < NQ ? __expf(s[mt][j + 2 * r] - q_max) : 0.f);
          sum += __half2float(e);
          p_h[q][warp * 32 + mt * 16 + group + 8 * r] = e;
        }
      for (int o = 4; o < 32; o <<= 1) sum += __shfl_xor_sync(0xffffffffu, sum, o);
      if (group == 0) sum_s[warp][q] = sum;
    }
    // Values (the read's first synchronization publishes the probabilities and sums).
    reader.read(pages.value_pages[at], position, false, reader_shared, values);
#pragma unroll
    for (int q = 0; q < kN; ++q) {
      float sum = 0.f;
      for (int w = 0; w < kTileWarps; ++w) sum += sum_s[w][q];
      l[q] = l[q] * rescale[q] + sum;
      m[q] = new_m[q];
      if (q == group)
#pragma unroll
        for (int nt = 0; nt < 4; ++nt) acc[nt][0] *= rescale[q], acc[nt][1] *= rescale[q];
    }
    // O[q][c] += sum_t p[q][t] * V[t][c]: this warp's 32 channels over the page's 128 tokens.
#pragma unroll
    for (int kt = 0; kt < kTileDim / 16; ++kt) {
      const int t = kt * 16 + pair;
      const uint32_t a[4] = {*reinterpret_cast<const uint32_t*>(&p_h[group][t]), 0u,  // rows 8..15: no queries
                             *reinterpret_cast<const uint32_t*>(&p_h[group][t + 8]), 0u};
#pragma unroll
      for (int nt = 0; nt < 4; ++nt) {
        const int c = warp * 32 + nt * 8 + group;
        mma_16816(acc[nt], a, values.word(c, t / 2), values.word(c, t / 2 + 4));
      }
    }
  }
  // acc[nt][0..1]: query `group`, channels warp*32 + nt*8 + pair + {0, 1}.
  const size_t row = (static_cast<size_t>(split) * streams + stream) * NQ;
  if (group < NQ) {
    const float my_l = select(l, group);
#pragma unroll
    for (int nt = 0; nt < 4; ++nt)
#pragma unroll
      for (int j = 0; j < 2; ++j)
        split_out[(row + group) * kTileDim + warp * 32 + nt * 8 + pair + j] = my_l > 0.f ? acc[nt][j] / my_l : 0.f;
  }
#pragma unroll
  for (int q = 0; q < NQ; ++q)
    if (tid == q) split_lse[row + q] = l[q] > 0.f ? m[q] + logf(l[q]) : -INFINITY;
}

}  // namespace kernels

// Launches decode_pages_kernel (n_pages * kv_heads blocks).
template <typename Reader>
void decode_pages_tiled(const Reader& reader, bool keys, const uint8_t* const* pages, int n_pages, int kv_heads, int first_position,
                        const float* inv_freq, uint16_t* rows, cudaStream_t stream) {
  if (n_pages == 0) return;
  const size_t shared = kernels::kFloatTileBytes + reader.shared_bytes();
  kernels::allow_shared(kernels::decode_pages_kernel<Reader>, shared);
  kernels::decode_pages_kernel<Reader><<<n_pages * kv_heads, kernels::kTileDim, shared, stream>>>(reader, keys, pages, kv_heads,
                                                                                                  first_position, inv_freq, rows);
  RINGKV_CHECK_CUDA(cudaGetLastError());
}

// The partial states of `splits` runs of pages_per_split pages (the last runs may hold fewer, or
// none) into split_out [splits][streams][n_queries][128] and split_lse [splits][streams][n_queries].
template <typename Reader>
void decode_attention_tiled_splits(const Reader& reader, const TiledPages& pages, int pages_per_split, int splits,
                                   const float* queries, int n_queries, float scale, float* split_out, float* split_lse,
                                   cudaStream_t stream) {
  with_queries_per_kv_head(n_queries, "decode attention", [&](auto nq) {
    const auto kernel = kernels::decode_attention_tiled_kernel<Reader, decltype(nq)::value>;
    kernels::allow_shared(kernel, reader.shared_bytes());
    kernel<<<dim3(splits, pages.streams), kernels::kTileDim, reader.shared_bytes(), stream>>>(reader, pages, pages_per_split, queries,
                                                                                           scale, split_out, split_lse);
  });
}

// Decode attention over the pages and tails, merged into out [streams][n_queries][128] and lse
// [streams][n_queries]; workspace as decode_attention_int_gpu's (splits + 1 states with tails).
template <typename Reader>
void decode_attention_tiled(const Reader& reader, const TiledPages& pages, const float* queries, int n_queries, float scale,
                            int splits, float* split_out, float* split_lse, float* out, float* lse, cudaStream_t stream) {
  RINGKV_REQUIRE(splits >= 1 && pages.streams >= 1, "decode attention: splits and streams must be positive");
  decode_attention_tiled_splits(reader, pages, (pages.n_pages + splits - 1) / splits, splits, queries, n_queries, scale, split_out,
                                split_lse, stream);
  merge_splits_and_tails_gpu(splits, pages.tails, pages.streams, queries, n_queries, 128, scale, split_out, split_lse, out, lse,
                             stream);
}

}  // namespace ringkv
