#pragma once
// Weighted k-means (Lloyd iterations after k-means++ seeding), multithreaded and deterministic:
// the same inputs and seed give bit-identical centroids whatever the thread count.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

namespace ringkv {

// Points whose nearest centroids Lloyd's passes ask for again and again (the centroids change,
// the points do not), on the device that holds them.
class LoadedPoints {
 public:
  virtual ~LoadedPoints() = default;
  // out[i]: the index of the nearest of `clusters` centroids ([clusters][dim], squared Euclidean)
  // to point i; of equal distances the first index.
  virtual void assign(const float* centroids, int clusters, uint32_t* out) = 0;
};

// Where the nearest-centroid searches of k-means run: the CPU (cpu_nearest_search()), or a GPU
// (runtime/gpu). Searches agree but for near-ties, which rounding may break either way.
class NearestSearch {
 public:
  virtual ~NearestSearch() = default;
  // data: [n][dim], read until the returned points are dropped.
  virtual std::unique_ptr<LoadedPoints> load(const float* data, size_t n, int dim) const = 0;
};

const NearestSearch& cpu_nearest_search();

struct KMeansOptions {
  int clusters = 16;
  int iterations = 25;         // Lloyd iterations at most; stops early when no assignment changes
  uint64_t seed = 0x5eed;
  size_t max_seed_samples = 1 << 16;  // k-means++ seeds from a weighted sample of at most this many points
  const NearestSearch* search = nullptr;  // where Lloyd's searches run; nullptr: the CPU
};

struct KMeansResult {
  std::vector<float> centroids;  // [clusters][dim]
  std::vector<uint32_t> assignment;  // [n]: each point's nearest centroid
  double inertia = 0;                // weighted sum of squared distances to the nearest centroid
  int iterations_run = 0;
};

// data: [n][dim]; weights: [n] non-negative, or nullptr for uniform. With fewer distinct points
// than clusters, the spare centroids repeat existing points (codes stay valid, nothing is NaN).
KMeansResult weighted_kmeans(const float* data, size_t n, int dim, const float* weights, const KMeansOptions& options);

// Index of the nearest centroid (squared Euclidean) for each of n points.
void assign_nearest(const float* data, size_t n, int dim, const float* centroids, int clusters, uint32_t* out);

}  // namespace ringkv
