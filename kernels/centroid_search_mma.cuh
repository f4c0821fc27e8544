#pragma once
// Nearest centroids of 16 vectors at once on tensor cores, for the CQ and RVQ page encoders. A warp
// scores 8 centroids per step by |c|^2 - 2 x.c with m16n8k8 tf32 products; each operand is split into
// its tf32 part (truncated) and the remainder, and three products (big.big + big.small + small.big)
// keep each product term within about 2^-20 of |x||c| of the fp32 search's (the remainders lose
// their low bits on the tensor cores, and small.small is left out), so only near-ties can pick
// another centroid. Of equal scores the first index wins.
#include <cuda_runtime.h>

#include <cstdint>

#include "kernels/mma.cuh"
#include "kernels/vector_search.cuh"

namespace ringkv::kernels {

// k-steps of 8 channels per centroid of D channels (D = 4 pads the step with zeros).
template <int D>
constexpr int kCentroidSteps = (D + 7) / 8;

// The channel counts and table sizes the tensor-core search takes; others keep the fp32 search.
constexpr int kMostStagedCentroidSteps = 512;  // codes x k-steps: 32 KiB of staged fragments
constexpr bool tensor_core_channels(int channels) { return channels == 4 || channels == 8 || channels == 16; }
inline bool tensor_core_search_fits(int channels, int codes) {
  return tensor_core_channels(channels) && codes >= 8 && codes % 8 == 0 && codes * ((channels + 7) / 8) <= kMostStagedCentroidSteps;
}

// Shared bytes of one staged table: per 8 centroids and k-step, each lane's B fragment (float4:
// tf32 parts of its two channels, then their remainders); then the squared norms.
__host__ __device__ inline size_t staged_centroid_bytes(int channels, int codes) {
  return static_cast<size_t>(codes) * ((channels + 7) / 8) * 64 + static_cast<size_t>(codes) * sizeof(float);
}

// x with the low 13 mantissa bits cleared: what the tensor cores read of it.
__device__ inline float tf32_part(float x) { return __uint_as_float(__float_as_uint(x) & 0xffffe000u); }

// Stages `codes` centroids of D channels (table: [codes][D], 16-byte aligned) into `staged`
// (staged_centroid_bytes). Every thread of the block takes part; the caller synchronizes after.
template <int D>
__device__ void stage_centroids(const float* __restrict__ table, int codes, unsigned char* staged) {
  constexpr int kSteps = kCentroidSteps<D>;
  float4* fragments = reinterpret_cast<float4*>(staged);
  float* norms = reinterpret_cast<float*>(staged + static_cast<size_t>(codes) * kSteps * 64);
  for (int n = threadIdx.x; n < codes; n += blockDim.x) {
    float c[D];
    load_vector<D>(table + static_cast<size_t>(n) * D, c);
    norms[n] = squared_norm<D>(c);
#pragma unroll
    for (int s = 0; s < kSteps; ++s)
#pragma unroll
      for (int i = 0; i < 4; ++i) {
        const float lo = 8 * s + i < D ? c[8 * s + i] : 0.f, hi = 8 * s + i + 4 < D ? c[8 * s + i + 4] : 0.f;
        fragments[((n / 8) * kSteps + s) * 32 + (n % 8) * 4 + i] =
            make_float4(tf32_part(lo), tf32_part(hi), lo - tf32_part(lo), hi - tf32_part(hi));
      }
  }
}

// The nearest staged centroid of each of the warp's 16 rows: row(r, j) gives channel j of row r
// (any finite value for rows past the end). Every lane returns the codes of rows lane / 4 (first)
// and lane / 4 + 8 (second).
template <int D, typename Row>
__device__ inline uint2 nearest_of_16_rows(const unsigned char* staged, int codes, const Row& row) {
  constexpr int kSteps = kCentroidSteps<D>;
  const float4* fragments = reinterpret_cast<const float4*>(staged);
  const float* norms = reinterpret_cast<const float*>(staged + static_cast<size_t>(codes) * kSteps * 64);
  const int lane = threadIdx.x & 31, g = lane / 4, i = lane % 4;
  uint32_t big[kSteps][4], small[kSteps][4];  // -2x, split
#pragma unroll
  for (int s = 0; s < kSteps; ++s)
#pragma unroll
    for (int q = 0; q < 4; ++q) {
      const int j = 8 * s + i + (q / 2) * 4;
      const float x = j < D ? -2.0f * row(g + (q % 2) * 8, j) : 0.f;
      big[s][q] = __float_as_uint(tf32_part(x)), small[s][q] = __float_as_uint(x - tf32_part(x));
    }
  float best[2] = {INFINITY, INFINITY};
  uint32_t arg[2] = {0, 0};
#pragma unroll 2
  for (int tile = 0; tile < codes / 8; ++tile) {
    const float2 norm = *reinterpret_cast<const float2*>(norms + tile * 8 + 2 * i);
    float score[4] = {norm.x, norm.y, norm.x, norm.y};
#pragma unroll
    for (int s = 0; s < kSteps; ++s) {
      const float4 b = fragments[(tile * kSteps + s) * 32 + lane];
      mma_1688_tf32(score, small[s], __float_as_uint(b.x), __float_as_uint(b.y));
      mma_1688_tf32(score, big[s], __float_as_uint(b.z), __float_as_uint(b.w));
      mma_1688_tf32(score, big[s], __float_as_uint(b.x), __float_as_uint(b.y));
    }
#pragma unroll
    for (int q = 0; q < 4; ++q)
      if (score[q] < best[q / 2]) best[q / 2] = score[q], arg[q / 2] = tile * 8 + 2 * i + q % 2;
  }
  // The quad's four lanes hold the same rows: least score, then least index.
#pragma unroll
  for (int r = 0; r < 2; ++r)
#pragma unroll
    for (int offset = 1; offset < 4; offset *= 2) {
      const float other = __shfl_xor_sync(0xffffffffu, best[r], offset);
      const uint32_t other_arg = __shfl_xor_sync(0xffffffffu, arg[r], offset);
      if (other < best[r] || (other == best[r] && other_arg < arg[r])) best[r] = other, arg[r] = other_arg;
    }
  return make_uint2(arg[0], arg[1]);
}

}  // namespace ringkv::kernels
