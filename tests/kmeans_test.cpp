// Weighted k-means: recovers known clusters, honours weights, is deterministic for any thread count.
#include <gtest/gtest.h>
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <random>

#include "kvstore/kmeans.hpp"

namespace ringkv {
namespace {

// n points around each of `centers` ([k][dim]) with noise sigma.
std::vector<float> clustered(const std::vector<float>& centers, int dim, size_t per_cluster, float sigma, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> noise(0.0f, sigma);
  const size_t k = centers.size() / dim;
  std::vector<float> data;
  for (size_t i = 0; i < per_cluster; ++i)
    for (size_t c = 0; c < k; ++c)
      for (int j = 0; j < dim; ++j) data.push_back(centers[c * dim + j] + noise(rng));
  return data;
}

// Distance from each true center to the nearest learned centroid, maximized over centers.
float worst_recovery(const std::vector<float>& centers, const std::vector<float>& learned, int dim) {
  float worst = 0;
  for (size_t c = 0; c < centers.size() / dim; ++c) {
    float best = 1e30f;
    for (size_t l = 0; l < learned.size() / dim; ++l) {
      float d = 0;
      for (int j = 0; j < dim; ++j) d += (centers[c * dim + j] - learned[l * dim + j]) * (centers[c * dim + j] - learned[l * dim + j]);
      best = std::min(best, d);
    }
    worst = std::max(worst, std::sqrt(best));
  }
  return worst;
}

TEST(KMeans, RecoversSeparatedClusters) {
  for (int dim : {2, 8}) {
    // 12 centers on a 4 x 3 grid of spacing 10 in the first two coordinates, jittered.
    std::mt19937_64 rng(dim);
    std::uniform_real_distribution<float> u(-1.0f, 1.0f);
    std::vector<float> centers(static_cast<size_t>(12) * dim);
    for (int c = 0; c < 12; ++c)
      for (int j = 0; j < dim; ++j) centers[c * dim + j] = (j == 0 ? 10.0f * (c % 4) : j == 1 ? 10.0f * (c / 4) : 0.0f) + u(rng);
    const std::vector<float> data = clustered(centers, dim, 500, 0.3f, 7);
    KMeansOptions o;
    o.clusters = 12;
    const KMeansResult r = weighted_kmeans(data.data(), data.size() / dim, dim, nullptr, o);
    EXPECT_LT(worst_recovery(centers, r.centroids, dim), 0.2f) << "dim " << dim;
    EXPECT_GT(r.iterations_run, 0);
    EXPECT_LT(r.inertia / (data.size() / dim), 0.3 * 0.3 * dim * 1.5);
  }
}

TEST(KMeans, WeightsPullTheCentroid) {
  // Two points, one centroid: it lands at the weighted mean.
  const std::vector<float> data{0.0f, 10.0f};
  const std::vector<float> w{1.0f, 3.0f};
  KMeansOptions o;
  o.clusters = 1;
  std::vector<float> many, many_w;
  for (int i = 0; i < 50; ++i) many.insert(many.end(), data.begin(), data.end()), many_w.insert(many_w.end(), w.begin(), w.end());
  const KMeansResult r = weighted_kmeans(many.data(), many.size(), 1, many_w.data(), o);
  EXPECT_NEAR(r.centroids[0], 7.5f, 1e-4);
  const KMeansResult uniform = weighted_kmeans(many.data(), many.size(), 1, nullptr, o);
  EXPECT_NEAR(uniform.centroids[0], 5.0f, 1e-4);
}

TEST(KMeans, SameResultForAnyThreadCount) {
  std::mt19937_64 rng(3);
  std::normal_distribution<float> n;
  std::vector<float> data(static_cast<size_t>(300000) * 4), w(300000);
  for (float& x : data) x = n(rng);
  for (float& x : w) x = std::fabs(n(rng));
  KMeansOptions o;
  o.clusters = 64;
  o.iterations = 6;
  const int threads = omp_get_max_threads();
  omp_set_num_threads(1);
  const KMeansResult one = weighted_kmeans(data.data(), 300000, 4, w.data(), o);
  omp_set_num_threads(3);
  const KMeansResult three = weighted_kmeans(data.data(), 300000, 4, w.data(), o);
  omp_set_num_threads(threads);
  EXPECT_EQ(one.centroids, three.centroids);
  EXPECT_EQ(one.inertia, three.inertia);
}

TEST(KMeans, FewerPointsThanClustersGiveValidCentroids) {
  const std::vector<float> data{1, 2, 3, 4, 5, 6};  // 3 points in 2-D
  KMeansOptions o;
  o.clusters = 8;
  const KMeansResult r = weighted_kmeans(data.data(), 3, 2, nullptr, o);
  ASSERT_EQ(r.centroids.size(), 16u);
  for (float c : r.centroids) EXPECT_TRUE(std::isfinite(c));
  std::vector<uint32_t> a(3);
  assign_nearest(data.data(), 3, 2, r.centroids.data(), 8, a.data());
  for (int i = 0; i < 3; ++i) EXPECT_EQ(r.centroids[a[i] * 2], data[i * 2]);
}

TEST(KMeans, ScalarLevelsOfAGaussian) {
  // 1-D k-means on a million Gaussian samples gives the symmetric Lloyd-Max levels (4 levels:
  // +-0.4528, +-1.5104).
  std::mt19937_64 rng(9);
  std::normal_distribution<float> n;
  std::vector<float> data(1000000);
  for (float& x : data) x = n(rng);
  KMeansOptions o;
  o.clusters = 4;
  o.iterations = 60;
  KMeansResult r = weighted_kmeans(data.data(), data.size(), 1, nullptr, o);
  std::sort(r.centroids.begin(), r.centroids.end());
  EXPECT_NEAR(r.centroids[0], -1.5104f, 0.02f);
  EXPECT_NEAR(r.centroids[1], -0.4528f, 0.02f);
  EXPECT_NEAR(r.centroids[2], 0.4528f, 0.02f);
  EXPECT_NEAR(r.centroids[3], 1.5104f, 0.02f);
}

TEST(KMeans, AssignNearestMatchesBruteForce) {
  std::mt19937_64 rng(4);
  std::normal_distribution<float> n;
  for (int dim : {1, 3, 8}) {
    std::vector<float> data(static_cast<size_t>(5000) * dim), c(static_cast<size_t>(37) * dim);
    for (float& x : data) x = n(rng);
    for (float& x : c) x = n(rng);
    std::vector<uint32_t> got(5000);
    assign_nearest(data.data(), 5000, dim, c.data(), 37, got.data());
    for (int i = 0; i < 5000; ++i) {
      auto dist = [&](uint32_t j) {
        double s = 0;
        for (int k = 0; k < dim; ++k) s += (data[i * dim + k] - c[j * dim + k]) * (data[i * dim + k] - c[j * dim + k]);
        return s;
      };
      double best = 1e30;
      for (uint32_t j = 0; j < 37; ++j) best = std::min(best, dist(j));
      ASSERT_NEAR(dist(got[i]), best, 1e-4) << "dim " << dim << " point " << i;
    }
  }
}

}  // namespace
}  // namespace ringkv
