// Decode attention over KVQuant pages read in place, flash-decoding style: a block takes a run of
// pages of one stream, reads each page's keys into a shared tile as stored (ranges, levels, sink
// rows, outliers), scores them with one thread per token (turning pre-RoPE keys to their positions
// on the way), then reads the values into the same tile and accumulates with one thread per
// channel, under an online softmax; the runs' partial states and the bf16 tails merge afterwards.
// The CPU twin is partial_attention over KVQuantCodec pages.
#include "kernels/decode_attention_gpu.hpp"
#include "kernels/decode_attention_tail_gpu.hpp"
#include "kernels/kvquant_pages.cuh"

namespace ringkv {

namespace kernels {

constexpr int kKVQuantWarps = kKVQuantDim / 32;

// grid: (splits, streams); block: kKVQuantDim threads; dynamic shared memory: kTileBytes.
// queries [streams][NQ][128]; split_out [splits][streams][NQ][128], split_lse [splits][streams][NQ].
template <int BITS, int NQ>
__global__ void __launch_bounds__(kKVQuantDim) decode_attention_kvquant_kernel(KVQuantPagesGpu pages, int pages_per_split,
                                                                              const float* __restrict__ queries, float scale,
                                                                              float* __restrict__ split_out,
                                                                              float* __restrict__ split_lse) {
  extern __shared__ float tile[];  // a page's keys, then its values: [token][kKVQuantPitch]
  __shared__ float q_s[NQ][kKVQuantDim], p_s[NQ][kKVQuantDim];
  __shared__ float key_levels_s[kKVQuantMaxLevels], value_levels_s[kKVQuantMaxLevels], range_s[2 * kKVQuantDim];
  __shared__ float freq_s[kKVQuantDim / 2], max_s[kKVQuantWarps][NQ], sum_s[kKVQuantWarps][NQ];
  const int split = blockIdx.x, stream = blockIdx.y, streams = gridDim.y, tid = threadIdx.x;
  const int lane = tid & 31, warp = tid >> 5;
  for (int i = tid; i < NQ * kKVQuantDim; i += blockDim.x)
    q_s[i / kKVQuantDim][i % kKVQuantDim] = queries[static_cast<size_t>(stream) * NQ * kKVQuantDim + i];
  if (tid < (1 << BITS)) key_levels_s[tid] = pages.key_levels[stream][tid], value_levels_s[tid] = pages.value_levels[stream][tid];
  if (tid < kKVQuantDim / 2) freq_s[tid] = pages.inv_freq[tid];
  const bool rotate = pages.shape.pre_rope;

  // Running softmax state per query, the same in every thread; acc: this thread's channel.
  float m[NQ], l[NQ], acc[NQ];
#pragma unroll
  for (int q = 0; q < NQ; ++q) m[q] = -INFINITY, l[q] = 0.f, acc[q] = 0.f;
  const int first = split * pages_per_split, last = min(first + pages_per_split, pages.n_pages);
  for (int p = first; p < last; ++p) {
    const size_t at = static_cast<size_t>(stream) * pages.n_pages + p;
    const int position = p * kKVQuantDim;
    // Keys (the read's synchronizations also order this page's tile after the last page's reads).
    read_kvquant_page<BITS>(pages.key_pages[at], KVQuantPageLayout::of(pages.shape, true, kKVQuantDim, position), true,
                            kKVQuantDim, key_levels_s, range_s, tile);
    float s[NQ] = {};
    const float* k = tile + tid * kKVQuantPitch;
    if (rotate) {
      for (int i = 0; i < kKVQuantDim / 2; ++i) {
        const float2 cs = rope_cos_sin(position + tid, freq_s[i]);
        const float a = k[i], b = k[i + kKVQuantDim / 2];
        const float ka = a * cs.x - b * cs.y, kb = b * cs.x + a * cs.y;
#pragma unroll
        for (int q = 0; q < NQ; ++q) s[q] += q_s[q][i] * ka + q_s[q][i + kKVQuantDim / 2] * kb;
      }
    } else {
      for (int c = 0; c < kKVQuantDim; ++c)
#pragma unroll
        for (int q = 0; q < NQ; ++q) s[q] += q_s[q][c] * k[c];
    }
#pragma unroll
    for (int q = 0; q < NQ; ++q) {
      s[q] *= scale;
      float mx = s[q];
      for (int o = 16; o > 0; o >>= 1) mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, o));
      if (lane == 0) max_s[warp][q] = mx;
    }
    __syncthreads();  // the key tile is read; the page maxima are in
    float rescale[NQ];
#pragma unroll
    for (int q = 0; q < NQ; ++q) {
      float new_m = m[q];
      for (int w = 0; w < kKVQuantWarps; ++w) new_m = fmaxf(new_m, max_s[w][q]);
      const float e = __expf(s[q] - new_m);
      p_s[q][tid] = e;
      float sum = e;
      for (int o = 16; o > 0; o >>= 1) sum += __shfl_xor_sync(0xffffffffu, sum, o);
      if (lane == 0) sum_s[warp][q] = sum;
      rescale[q] = __expf(m[q] - new_m);  // 0 on the first page (m = -inf)
      m[q] = new_m;
    }
    // Values (the read's first synchronization publishes the probabilities and sums).
    read_kvquant_page<BITS>(pages.value_pages[at], KVQuantPageLayout::of(pages.shape, false, kKVQuantDim, position), false,
                            kKVQuantDim, value_levels_s, range_s, tile);
#pragma unroll
    for (int q = 0; q < NQ; ++q) {
      float sum = 0.f;
      for (int w = 0; w < kKVQuantWarps; ++w) sum += sum_s[w][q];
      l[q] = l[q] * rescale[q] + sum;
      acc[q] *= rescale[q];
    }
    for (int t = 0; t < kKVQuantDim; ++t) {
      const float v = tile[t * kKVQuantPitch + tid];
#pragma unroll
      for (int q = 0; q < NQ; ++q) acc[q] += p_s[q][t] * v;
    }
  }
  const size_t row = (static_cast<size_t>(split) * streams + stream) * NQ;
#pragma unroll
  for (int q = 0; q < NQ; ++q) {
    split_out[(row + q) * kKVQuantDim + tid] = l[q] > 0.f ? acc[q] / l[q] : 0.f;
    if (tid == 0) split_lse[row + q] = l[q] > 0.f ? m[q] + logf(l[q]) : -INFINITY;
  }
}

}  // namespace kernels

void decode_attention_kvquant_gpu(const KVQuantPagesGpu& pages, const float* queries, int n_queries, float scale, int splits,
                                  float* split_out, float* split_lse, float* out, float* lse, cudaStream_t stream) {
  require_kvquant_gpu(pages.shape);
  RINGKV_REQUIRE(splits >= 1 && pages.streams >= 1, "decode_attention_kvquant_gpu: splits and streams must be positive");
  const int per_split = (pages.n_pages + splits - 1) / splits;
  with_code_bits(pages.shape.bits, "decode_attention_kvquant_gpu", [&](auto bits) {
    with_queries_per_kv_head(n_queries, "decode_attention_kvquant_gpu", [&](auto nq) {
      const auto kernel = kernels::decode_attention_kvquant_kernel<decltype(bits)::value, decltype(nq)::value>;
      kernels::allow_tile(kernel);
      kernel<<<dim3(splits, pages.streams), kernels::kKVQuantDim, kernels::kTileBytes, stream>>>(pages, per_split, queries, scale,
                                                                                                split_out, split_lse);
    });
  });
  merge_splits_and_tails_gpu(splits, {pages.tail_keys, pages.tail_values, pages.tail_tokens}, pages.streams, queries, n_queries,
                             128, scale, split_out, split_lse, out, lse, stream);
}

}  // namespace ringkv
