#pragma once
// Weighted k-means (Lloyd iterations after k-means++ seeding), multithreaded and deterministic:
// the same inputs and seed give bit-identical centroids whatever the thread count.
#include <cstddef>
#include <cstdint>
#include <vector>

namespace ringkv {

struct KMeansOptions {
  int clusters = 16;
  int iterations = 25;         // Lloyd iterations at most; stops early when no assignment changes
  uint64_t seed = 0x5eed;
  size_t max_seed_samples = 1 << 16;  // k-means++ seeds from a weighted sample of at most this many points
};

struct KMeansResult {
  std::vector<float> centroids;  // [clusters][dim]
  double inertia = 0;            // weighted sum of squared distances to the nearest centroid
  int iterations_run = 0;
};

// data: [n][dim]; weights: [n] non-negative, or nullptr for uniform. With fewer distinct points
// than clusters, the spare centroids repeat existing points (codes stay valid, nothing is NaN).
KMeansResult weighted_kmeans(const float* data, size_t n, int dim, const float* weights, const KMeansOptions& options);

// Index of the nearest centroid (squared Euclidean) for each of n points.
void assign_nearest(const float* data, size_t n, int dim, const float* centroids, int clusters, uint32_t* out);

}  // namespace ringkv
