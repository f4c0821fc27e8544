// k-means' nearest-centroid search on the GPU against its CPU twin (assign_nearest), and whole
// k-means runs with the searches on the GPU against runs on the CPU; skipped without a CUDA device.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>

#include "kernels/cuda_check.hpp"
#include "kernels/nearest_centroid_gpu.hpp"
#include "kvstore/kmeans.hpp"
#include "runtime/gpu/gpu_nearest_search.hpp"

namespace ringkv {
namespace {

double squared_distance(const float* a, const float* b, int dim) {
  double s = 0;
  for (int j = 0; j < dim; ++j) s += (static_cast<double>(a[j]) - b[j]) * (static_cast<double>(a[j]) - b[j]);
  return s;
}

// Points x centroids of every compiled dimension against assign_nearest: the same index but for
// near-ties (a distance within fp32 rounding of the best), and few of those.
void expect_matches_cpu_twin(size_t n, int dim, int clusters, std::mt19937& rng) {
  std::normal_distribution<float> normal;
  std::vector<float> points(n * dim), centroids(static_cast<size_t>(clusters) * dim);
  for (float& x : points) x = normal(rng);
  for (float& x : centroids) x = normal(rng);
  std::vector<uint32_t> want(n), got(n);
  assign_nearest(points.data(), n, dim, centroids.data(), clusters, want.data());
  DeviceBuffer<float> d_points(points.size()), d_centroids(centroids.size());
  DeviceBuffer<uint32_t> d_out(n);
  d_points.upload(points.data());
  d_centroids.upload(centroids.data());
  d_out.poison();
  nearest_centroid_gpu(d_points.data(), n, dim, d_centroids.data(), clusters, d_out.data(), nullptr);
  RINGKV_CHECK_CUDA(cudaDeviceSynchronize());
  d_out.download(got.data());
  size_t differ = 0;
  for (size_t i = 0; i < n; ++i) {
    ASSERT_LT(got[i], static_cast<uint32_t>(clusters)) << "point " << i << " was not written";
    if (got[i] == want[i]) continue;
    ++differ;
    const float* x = &points[i * dim];
    const double a = squared_distance(x, &centroids[size_t{got[i]} * dim], dim);
    const double b = squared_distance(x, &centroids[size_t{want[i]} * dim], dim);
    ASSERT_NEAR(a, b, 1e-5 * (1 + b)) << "dim " << dim << ", " << clusters << " centroids, point " << i;
  }
  EXPECT_LE(differ, std::max<size_t>(1, n / 1000)) << "dim " << dim << ", " << clusters << " centroids: too many near-ties";
}

TEST(GpuNearestCentroid, MatchesCpuTwinButForNearTies) {
  if (cuda_device_count() == 0) GTEST_SKIP() << "no CUDA device: GPU kernel test skipped";
  std::mt19937 rng(11);
  for (int dim : {1, 2, 4, 8, 16, 32})
    for (int clusters : {1, 7, 300, 4500}) expect_matches_cpu_twin(70001, dim, clusters, rng);  // 4500: several tiles
}

// Few points, many tiles of centroids: small enough for compute-sanitizer's racecheck.
TEST(GpuNearestCentroid, FewPointsOverManyTiles) {
  if (cuda_device_count() == 0) GTEST_SKIP() << "no CUDA device: GPU kernel test skipped";
  std::mt19937 rng(12);
  for (int dim : {1, 2, 8, 32}) expect_matches_cpu_twin(301, dim, 9000, rng);
}

TEST(GpuNearestSearch, KMeansMatchesCpuSearch) {
  if (cuda_device_count() == 0) GTEST_SKIP() << "no CUDA device: GPU kernel test skipped";
  std::mt19937 rng(5);
  std::normal_distribution<float> normal;
  const GpuNearestSearch gpu(0);  // every search on the GPU, however small
  for (int dim : {2, 8, 16}) {
    // Well-separated clusters (the same centroids either way) and plain Gaussian points (near-ties
    // may steer Lloyd's passes apart; the fits stay as good).
    for (bool separated : {true, false}) {
      const int clusters = 64;
      const size_t n = 50003;
      std::vector<float> points(n * dim), weights(n);
      for (size_t i = 0; i < n; ++i) {
        weights[i] = 0.5f + static_cast<float>(i % 7);
        for (int j = 0; j < dim; ++j)
          points[i * dim + j] = (separated ? 40.0f * static_cast<float>((i % clusters) >> (j % 6) & 1) + 10.0f * j * (i % clusters) : 0.0f) +
                                normal(rng);
      }
      KMeansOptions options;
      options.clusters = clusters;
      const KMeansResult cpu = weighted_kmeans(points.data(), n, dim, weights.data(), options);
      options.search = &gpu;
      const KMeansResult on_gpu = weighted_kmeans(points.data(), n, dim, weights.data(), options);
      ASSERT_EQ(on_gpu.assignment.size(), n);
      if (separated) {
        EXPECT_EQ(on_gpu.assignment, cpu.assignment) << "dim " << dim;
        for (size_t e = 0; e < cpu.centroids.size(); ++e) ASSERT_NEAR(on_gpu.centroids[e], cpu.centroids[e], 1e-4) << "dim " << dim;
      }
      EXPECT_NEAR(on_gpu.inertia, cpu.inertia, 0.01 * cpu.inertia) << "dim " << dim << (separated ? ", separated" : ", Gaussian");
    }
  }
}

}  // namespace
}  // namespace ringkv
