#pragma once
// Decode attention over INT-coded pages (the KIVI-style codec of kvstore/codec_int), reading the
// codes directly, flash-decoding style: each block takes a run of pages of one stream (a layer and
// KV head of one sequence) and keeps an online softmax; the partial states of the runs are merged
// afterwards. One thread per token of a page for the scores (q . k = q . lo + (q * step) . codes,
// with one (lo, step) per channel and page), one thread per channel for the values (v = lo_t +
// step_t * code, one (lo, step) per token). The CPU twin is partial_attention over IntCodec pages.
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstdint>

namespace ringkv::kernels {

constexpr int kIntPageTokens = 128;  // one thread per token of a page
constexpr int kIntMaxQueries = 8;    // query heads sharing a KV head (GQA group)

struct IntPageParams {
  const uint8_t* const* key_pages;    // [streams][n_pages] device pointers to encoded pages
  const uint8_t* const* value_pages;  // [streams][n_pages]
  int n_pages;
  int pages_per_split;
};

__device__ inline float half_at(const uint8_t* p) { return __half2float(*reinterpret_cast<const __half*>(p)); }

// Sum (or max) over the block of one value per thread, for each of NQ queries; scratch holds
// [warps][NQ] floats. Every thread gets the results.
template <int NQ, bool MAX>
__device__ inline void block_reduce(float (&v)[NQ], float* scratch) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
#pragma unroll
  for (int q = 0; q < NQ; ++q)
    for (int o = 16; o > 0; o >>= 1) {
      const float other = __shfl_xor_sync(0xffffffffu, v[q], o);
      v[q] = MAX ? fmaxf(v[q], other) : v[q] + other;
    }
  __syncthreads();
  if (lane == 0)
#pragma unroll
    for (int q = 0; q < NQ; ++q) scratch[warp * NQ + q] = v[q];
  __syncthreads();
#pragma unroll
  for (int q = 0; q < NQ; ++q) {
    float r = scratch[q];
    for (int w = 1; w < warps; ++w) r = MAX ? fmaxf(r, scratch[w * NQ + q]) : r + scratch[w * NQ + q];
    v[q] = r;
  }
}

// grid: (splits, streams); block: kIntPageTokens threads. queries: [streams][NQ][HEAD_DIM];
// split_out: [splits][streams][NQ][HEAD_DIM], split_lse: [splits][streams][NQ].
template <int BITS, int HEAD_DIM, int NQ>
__global__ void __launch_bounds__(kIntPageTokens) decode_attention_int_kernel(IntPageParams pages,
                                                                             const float* __restrict__ queries, float scale,
                                                                             float* __restrict__ split_out,
                                                                             float* __restrict__ split_lse) {
  static_assert(HEAD_DIM == kIntPageTokens, "one thread per channel and per token: head_dim equals the page size");
  constexpr int kRowBytes = HEAD_DIM * BITS / 8;            // packed codes of one token
  constexpr int kParamBytes = 4 * HEAD_DIM;                 // fp16 (lo, step) per channel (keys) or token (values)
  constexpr int kCodeBytes = kIntPageTokens * kRowBytes;
  constexpr uint32_t kMask = (1u << BITS) - 1u;
  __shared__ float q_s[NQ][HEAD_DIM];
  __shared__ float qstep_s[NQ][HEAD_DIM];
  __shared__ float probs_s[NQ][kIntPageTokens];
  __shared__ float vlo_s[kIntPageTokens], vstep_s[kIntPageTokens];
  __shared__ __align__(16) uint8_t vcodes_s[kCodeBytes + 4];
  __shared__ float scratch[(kIntPageTokens / 32) * NQ];

  const int split = blockIdx.x, stream = blockIdx.y, streams = gridDim.y, tid = threadIdx.x;
  const float* q_in = queries + static_cast<size_t>(stream) * NQ * HEAD_DIM;
  for (int i = tid; i < NQ * HEAD_DIM; i += blockDim.x) q_s[i / HEAD_DIM][i % HEAD_DIM] = q_in[i];

  float m[NQ], l[NQ], acc[NQ];
#pragma unroll
  for (int q = 0; q < NQ; ++q) m[q] = -INFINITY, l[q] = 0.f, acc[q] = 0.f;

  const int first = split * pages.pages_per_split;
  const int last = min(first + pages.pages_per_split, pages.n_pages);
  for (int p = first; p < last; ++p) {
    const uint8_t* kp = pages.key_pages[static_cast<size_t>(stream) * pages.n_pages + p];
    const uint8_t* vp = pages.value_pages[static_cast<size_t>(stream) * pages.n_pages + p];
    __syncthreads();  // the previous page's shared data is no longer read
    // Keys: thread tid is channel tid for the per-channel terms.
    const float klo = half_at(kp + 4 * tid), kstep = half_at(kp + 4 * tid + 2);
    float base[NQ];
#pragma unroll
    for (int q = 0; q < NQ; ++q) {
      qstep_s[q][tid] = q_s[q][tid] * kstep;
      base[q] = q_s[q][tid] * klo;
    }
    block_reduce<NQ, false>(base, scratch);  // also orders the qstep_s writes before their reads
    // Scores: thread tid is token tid; its packed row is read as 32-bit words.
    uint32_t words[kRowBytes / 4];
    const uint32_t* row = reinterpret_cast<const uint32_t*>(kp + kParamBytes + tid * kRowBytes);
#pragma unroll
    for (int w = 0; w < kRowBytes / 4; ++w) words[w] = row[w];
    float s[NQ];
#pragma unroll
    for (int q = 0; q < NQ; ++q) s[q] = 0.f;
#pragma unroll
    for (int c = 0; c < HEAD_DIM; ++c) {
      const int bit = c * BITS, w = bit >> 5, sh = bit & 31;
      uint32_t code = words[w] >> sh;
      if (sh + BITS > 32) code |= words[w + 1] << (32 - sh);
      const float x = static_cast<float>(code & kMask);
#pragma unroll
      for (int q = 0; q < NQ; ++q) s[q] = fmaf(qstep_s[q][c], x, s[q]);
    }
    float page_max[NQ];
#pragma unroll
    for (int q = 0; q < NQ; ++q) page_max[q] = s[q] = (s[q] + base[q]) * scale;
    block_reduce<NQ, true>(page_max, scratch);
    float e[NQ];
#pragma unroll
    for (int q = 0; q < NQ; ++q) {
      const float new_m = fmaxf(m[q], page_max[q]);
      const float rescale = __expf(m[q] - new_m);  // 0 on the first page (m = -inf)
      l[q] *= rescale;
      acc[q] *= rescale;
      m[q] = new_m;
      probs_s[q][tid] = e[q] = __expf(s[q] - new_m);
    }
    block_reduce<NQ, false>(e, scratch);
#pragma unroll
    for (int q = 0; q < NQ; ++q) l[q] += e[q];
    // Values: per-token (lo, step) and the page's codes into shared memory.
    vlo_s[tid] = half_at(vp + 4 * tid);
    vstep_s[tid] = half_at(vp + 4 * tid + 2);
    const uint4* vsrc = reinterpret_cast<const uint4*>(vp + kParamBytes);
    uint4* vdst = reinterpret_cast<uint4*>(vcodes_s);
    for (int i = tid; i < kCodeBytes / 16; i += blockDim.x) vdst[i] = vsrc[i];
    __syncthreads();
    // Thread tid is channel tid: acc += sum_t p_t (lo_t + step_t * code_tc).
    for (int t = 0; t < kIntPageTokens; ++t) {
      const int bit = (t * HEAD_DIM + tid) * BITS, byte = bit >> 3, sh = bit & 7;
      const uint32_t word = vcodes_s[byte] | (static_cast<uint32_t>(vcodes_s[byte + 1]) << 8);
      const float v = vlo_s[t] + vstep_s[t] * static_cast<float>((word >> sh) & kMask);
#pragma unroll
      for (int q = 0; q < NQ; ++q) acc[q] = fmaf(probs_s[q][t], v, acc[q]);
    }
  }
  const size_t row = (static_cast<size_t>(split) * streams + stream) * NQ;
#pragma unroll
  for (int q = 0; q < NQ; ++q) {
    split_out[(row + q) * HEAD_DIM + tid] = l[q] > 0.f ? acc[q] / l[q] : 0.f;
    if (tid == 0) split_lse[row + q] = l[q] > 0.f ? m[q] + logf(l[q]) : -INFINITY;
  }
}

}  // namespace ringkv::kernels
