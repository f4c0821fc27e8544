#pragma once
// The next token from a row of logits on the GPU, in one block: the method and the CPU twin are
// sample_token_cpu (kernels/sample_token.hpp), and the token is the same unless a probability
// rounds to another float on the GPU (masses are fixed-point integers, so the order of the sums
// does not matter). The nucleus' byte-wise search builds its
// histograms with shared-memory atomics; for the draw each thread scans a contiguous run of the
// vocabulary after block-wide prefix sums of the runs' tie counts and masses.
#include <cuda_runtime.h>

#include <cstdint>

#include "kernels/sample_token.hpp"

namespace ringkv::kernels {

constexpr int kSampleThreads = 1024;

// Block-wide exclusive prefix sum of one value per thread (a block of kSampleThreads); `warp_sums`:
// 32 slots of shared memory. Every thread gets its own prefix; the block ends synchronized.
__device__ inline uint64_t block_exclusive_sum(uint64_t v, uint64_t* warp_sums) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  uint64_t inclusive = v;
#pragma unroll
  for (int o = 1; o < 32; o <<= 1) {
    const uint64_t up = __shfl_up_sync(0xffffffffu, inclusive, o);
    if (lane >= o) inclusive += up;
  }
  if (lane == 31) warp_sums[warp] = inclusive;
  __syncthreads();
  if (warp == 0) {
    const uint64_t w = warp_sums[lane];
    uint64_t x = w;
#pragma unroll
    for (int o = 1; o < 32; o <<= 1) {
      const uint64_t up = __shfl_up_sync(0xffffffffu, x, o);
      if (lane >= o) x += up;
    }
    warp_sums[lane] = x - w;
  }
  __syncthreads();
  const uint64_t result = warp_sums[warp] + inclusive - v;
  __syncthreads();
  return result;
}

// grid: 1; block: kSampleThreads. out: the token.
__global__ void __launch_bounds__(kSampleThreads) sample_token_kernel(const float* __restrict__ logits, int n, float temperature,
                                                                      float top_p, double u, int32_t* out) {
  __shared__ unsigned long long mass[256];
  __shared__ uint64_t sums[32];
  __shared__ float best_s[32];
  __shared__ int arg_s[32];
  __shared__ uint32_t edge_s;
  __shared__ uint64_t above_s;
  const int t = threadIdx.x, lane = t & 31, warp = t >> 5;
  // The run of indices this thread scans in order.
  const int run = (n + blockDim.x - 1) / blockDim.x, first = min(n, t * run), end = min(n, first + run);

  // The first largest logit; none is drawn from logits holding NaN or infinity (out = -1).
  float best = -INFINITY;
  int arg = n;
  bool finite = true;
  for (int i = first; i < end; ++i) {
    finite = finite && isfinite(logits[i]);
    if (arg == n || logits[i] > best) best = logits[i], arg = i;
  }
  if (!__syncthreads_and(finite)) {
    if (t == 0) *out = -1;
    return;
  }
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) {
    const float b = __shfl_xor_sync(0xffffffffu, best, o);
    const int a = __shfl_xor_sync(0xffffffffu, arg, o);
    if (a != n && (arg == n || b > best || (b == best && a < arg))) best = b, arg = a;
  }
  if (lane == 0) best_s[warp] = best, arg_s[warp] = arg;
  __syncthreads();
  best = best_s[0], arg = arg_s[0];
  for (int w = 1; w < 32; ++w)
    if (arg_s[w] != n && (arg == n || best_s[w] > best || (best_s[w] == best && arg_s[w] < arg))) best = best_s[w], arg = arg_s[w];
  if (temperature == 0.f) {
    if (t == 0) *out = arg;
    return;
  }
  const auto key_of = [&](int i) { return __float_as_uint(token_probability(logits[i], best, temperature)); };
  const auto mass_of = [](uint32_t k) { return probability_mass(__uint_as_float(k)); };

  // The nucleus: keys above `edge`, and the first `ties` equal to it.
  uint64_t local = 0;
  for (int i = first; i < end; ++i) local += mass_of(key_of(i));
  const uint64_t before = block_exclusive_sum(local, sums);
  if (t == blockDim.x - 1) above_s = before + local;
  __syncthreads();
  uint64_t nucleus = above_s, ties = 0;
  uint32_t edge = 0;
  if (top_p < 1.f) {
    const uint64_t target = max(1ull, static_cast<unsigned long long>(mass_share(top_p, nucleus)));
    uint64_t above = 0;
    for (int shift = 24; shift >= 0; shift -= 8) {
      const uint32_t high_mask = shift == 24 ? 0u : ~0u << (shift + 8);
      if (t < 256) mass[t] = 0;
      __syncthreads();
      for (int i = first; i < end; ++i) {
        const uint32_t k = key_of(i);
        if ((k & high_mask) == edge) atomicAdd(&mass[(k >> shift) & 255u], static_cast<unsigned long long>(mass_of(k)));
      }
      __syncthreads();
      if (t == 0) {
        int digit = 255;
        while (digit > 0 && above + mass[digit] < target) above += mass[digit--];
        edge_s = edge | static_cast<uint32_t>(digit) << shift;
        above_s = above;
      }
      __syncthreads();
      edge = edge_s, above = above_s;
    }
    const uint64_t edge_mass = mass_of(edge);
    ties = edge_mass > 0 ? (target - above + edge_mass - 1) / edge_mass : 0;
    nucleus = above + ties * edge_mass;
  }

  // The draw: this run's nucleus tokens after the ties and the mass of the runs before it.
  uint64_t tie_count = 0;
  for (int i = first; i < end; ++i) tie_count += key_of(i) == edge;
  const uint64_t first_tie_rank = block_exclusive_sum(tie_count, sums);
  const auto for_kept = [&](auto&& visit) {  // visit(index, mass) in order until it returns true
    uint64_t tie_rank = first_tie_rank;
    for (int i = first; i < end; ++i) {
      const uint32_t k = key_of(i);
      if (k < edge || (k == edge && tie_rank++ >= ties)) continue;
      if (visit(i, mass_of(k))) return;
    }
  };
  uint64_t kept = 0;
  for_kept([&](int, uint64_t m) { return kept += m, false; });
  // The draw falls in exactly one run: the runs' masses add up to the nucleus'.
  const uint64_t draw = min(mass_share(u, nucleus), nucleus - 1), kept_before = block_exclusive_sum(kept, sums);
  if (draw >= kept_before && draw - kept_before < kept) {
    uint64_t left = draw - kept_before;
    for_kept([&](int i, uint64_t m) {
      if (left >= m) return left -= m, false;
      *out = i;
      return true;
    });
  }
}

}  // namespace ringkv::kernels
