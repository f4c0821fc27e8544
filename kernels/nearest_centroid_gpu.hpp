#pragma once
// Host entry point of the GPU nearest-centroid search of k-means (device pointers).
#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>

namespace ringkv {

// Whether the GPU search is compiled for points of `dim` floats (1, 2, 4, 8, 16 or 32).
bool nearest_centroid_gpu_supports(int dim);

// out[i]: the index of the nearest of `clusters` centroids ([clusters][dim]) to point i of
// points ([n][dim]), squared Euclidean, the first index of equal distances; as assign_nearest
// (kvstore/kmeans.hpp) but for near-ties, which fp32 rounding may break either way.
void nearest_centroid_gpu(const float* points, size_t n, int dim, const float* centroids, int clusters, uint32_t* out,
                          cudaStream_t stream);

}  // namespace ringkv
