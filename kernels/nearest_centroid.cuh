#pragma once
// Nearest-centroid search of k-means on the GPU (the CPU twin is assign_nearest in
// kvstore/kmeans.cpp): a thread takes a point (D floats in registers) and scans the centroids,
// which the block stages through shared memory a tile at a time with their squared norms, by
// |c|^2 - 2 x.c (|x|^2 is common to all centroids); of equal distances the first index wins.
// Scalars (D = 1) compare (x - c)^2, which keeps dense levels apart where |c|^2 - 2xc would
// cancel (the CPU searches the midpoints of its sorted levels).
#include <cuda_runtime.h>

#include <cstdint>

#include "kernels/vector_search.cuh"

namespace ringkv::kernels {

constexpr int kNearestThreads = 256;
constexpr int kNearestTileBytes = 32 << 10;  // centroids staged per tile, norms beside them

template <int D>
constexpr int nearest_tile_centroids() {
  return kNearestTileBytes / (4 * (D + 1)) / 32 * 32;  // a multiple of the scan's unroll (4)
}

// grid: ceil(n / kNearestThreads); block: kNearestThreads; static shared memory.
// points: [n][D]; centroids: [clusters][D]; out: [n].
template <int D>
__global__ void __launch_bounds__(kNearestThreads) nearest_centroid_kernel(const float* __restrict__ points, size_t n,
                                                                           const float* __restrict__ centroids, int clusters,
                                                                           uint32_t* __restrict__ out) {
  constexpr int kTile = nearest_tile_centroids<D>();
  // Padded by a group of the unrolled scan, whose loads the compiler may issue ahead of the bound.
  __shared__ float tile[(kTile + 4) * D];
  __shared__ float norms[kTile + 4];
  const size_t i = static_cast<size_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  float x2[D] = {};  // -2x (D = 1: x)
  if (i < n) {
#pragma unroll
    for (int j = 0; j < D; ++j) x2[j] = (D == 1 ? 1.0f : -2.0f) * points[i * D + j];
  }
  float best = INFINITY;
  uint32_t arg = 0;
  for (int first = 0; first < clusters; first += kTile) {
    const int count = min(kTile, clusters - first);
    __syncthreads();  // the previous tile is read by every thread
    for (int e = threadIdx.x; e < count * D; e += blockDim.x) tile[e] = centroids[static_cast<size_t>(first) * D + e];
    __syncthreads();
    if constexpr (D > 1) {
      for (int k = threadIdx.x; k < count; k += blockDim.x) {
        float c[D];
#pragma unroll
        for (int j = 0; j < D; ++j) c[j] = tile[k * D + j];
        norms[k] = squared_norm<D>(c);
      }
      __syncthreads();
    }
#pragma unroll 4
    for (int k = 0; k < count; ++k) {
      float d;
      if constexpr (D == 1) {
        d = (x2[0] - tile[k]) * (x2[0] - tile[k]);
      } else {
        d = norms[k];
#pragma unroll
        for (int j = 0; j < D; ++j) d = fmaf(x2[j], tile[k * D + j], d);
      }
      if (d < best) best = d, arg = static_cast<uint32_t>(first + k);
    }
  }
  if (i < n) out[i] = arg;
}

}  // namespace ringkv::kernels
