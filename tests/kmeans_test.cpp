// Weighted k-means: recovers known clusters, honours weights, is deterministic for any thread count.
#include <gtest/gtest.h>
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <random>

#include "kernels/error.hpp"
#include "kvstore/kmeans.hpp"

namespace ringkv {
namespace {

// n points around each of `centers` ([k][dim]) with noise sigma.
std::vector<float> clustered(const std::vector<float>& centers, int dim, size_t per_cluster, float sigma,
                             uint64_t seed) {
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
      for (int j = 0; j < dim; ++j) d += std::pow(centers[c * dim + j] - learned[l * dim + j], 2.0f);
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
      for (int j = 0; j < dim; ++j)
        centers[c * dim + j] = (j == 0 ? 10.0f * (c % 4) : j == 1 ? 10.0f * (c / 4) : 0.0f) + u(rng);
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
  for (int i = 0; i < 50; ++i) {
    many.insert(many.end(), data.begin(), data.end());
    many_w.insert(many_w.end(), w.begin(), w.end());
  }
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
  for (int t : {2, 3}) {
    omp_set_num_threads(t);
    const KMeansResult r = weighted_kmeans(data.data(), 300000, 4, w.data(), o);
    EXPECT_EQ(one.centroids, r.centroids) << t << " threads";
    EXPECT_EQ(one.inertia, r.inertia) << t << " threads";
    EXPECT_EQ(one.iterations_run, r.iterations_run) << t << " threads";
    EXPECT_EQ(one.assignment, r.assignment) << t << " threads";
  }
  omp_set_num_threads(threads);
}

TEST(KMeans, InertiaAndAssignmentAreOfTheReturnedCentroids) {
  std::mt19937_64 rng(5);
  std::normal_distribution<float> n;
  std::vector<float> data(static_cast<size_t>(20000) * 3), w(20000);
  for (float& x : data) x = n(rng);
  for (float& x : w) x = std::fabs(n(rng));
  KMeansOptions o;
  o.clusters = 10;
  o.iterations = 3;  // stops before converging: the inertia must still match the final centroids
  const KMeansResult r = weighted_kmeans(data.data(), 20000, 3, w.data(), o);
  std::vector<uint32_t> a(20000);
  assign_nearest(data.data(), 20000, 3, r.centroids.data(), 10, a.data());
  double inertia = 0;
  for (size_t i = 0; i < 20000; ++i)
    for (int c = 0; c < 3; ++c) inertia += w[i] * std::pow(data[i * 3 + c] - r.centroids[a[i] * 3 + c], 2.0);
  EXPECT_NEAR(r.inertia, inertia, 1e-6 * inertia);
  EXPECT_EQ(r.assignment, a);
  EXPECT_EQ(r.iterations_run, 3);
}

TEST(KMeans, ZeroWeightsFallBackToUniform) {
  std::vector<float> data;
  for (int i = 0; i < 100; ++i) data.push_back(i % 2 ? 4.0f : 0.0f);
  const std::vector<float> zeros(100, 0.0f);
  KMeansOptions o;
  o.clusters = 1;
  const KMeansResult r = weighted_kmeans(data.data(), 100, 1, zeros.data(), o);
  EXPECT_NEAR(r.centroids[0], 2.0f, 1e-6);
  std::vector<float> negative(100, 1.0f);
  negative[3] = -1.0f;
  EXPECT_THROW(weighted_kmeans(data.data(), 100, 1, negative.data(), o), Error);
}

TEST(KMeans, FewerDistinctPointsThanClusters) {
  // 1000 points at 3 places, 16 clusters: the 3 places are centroids, the spares repeat points.
  std::vector<float> data;
  for (int i = 0; i < 1000; ++i) data.insert(data.end(), {static_cast<float>(i % 3), -1.0f});
  KMeansOptions o;
  o.clusters = 16;
  const KMeansResult r = weighted_kmeans(data.data(), 1000, 2, nullptr, o);
  EXPECT_EQ(r.inertia, 0.0);
  EXPECT_LT(r.iterations_run, o.iterations);  // converged, did not churn on the spares
  for (size_t j = 0; j < 16; ++j) {
    EXPECT_EQ(r.centroids[2 * j + 1], -1.0f);
    const float x = r.centroids[2 * j];
    EXPECT_TRUE(x == 0.0f || x == 1.0f || x == 2.0f) << x;
  }
}

TEST(KMeans, EmptyClusterMovesToTheWorstServedPoint) {
  // Seeding from 2 sampled points gives 3 centroids of which two coincide, so one cluster is empty
  // after the first pass; it must move to the heavy outlier rather than stay a useless duplicate.
  std::mt19937_64 rng(6);
  std::normal_distribution<float> n(0.0f, 0.1f);
  std::vector<float> data(2000), w(2000, 1.0f);
  for (size_t i = 0; i < data.size(); ++i) data[i] = (i % 2 ? 10.0f : 0.0f) + n(rng);
  data[1234] = 100.0f;
  w[1234] = 50.0f;
  KMeansOptions o;
  o.clusters = 3;
  o.max_seed_samples = 2;
  const KMeansResult r = weighted_kmeans(data.data(), data.size(), 1, w.data(), o);
  EXPECT_NE(std::find(r.centroids.begin(), r.centroids.end(), 100.0f), r.centroids.end())
      << r.centroids[0] << " " << r.centroids[1] << " " << r.centroids[2];
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
  EXPECT_EQ(r.assignment, a);
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
  for (auto [dim, clusters] : {std::pair{1, 37}, {3, 37}, {8, 37}, {8, 256}, {32, 1024}, {5, 1}}) {
    const int points = 3001;
    std::vector<float> data(static_cast<size_t>(points) * dim), c(static_cast<size_t>(clusters) * dim);
    for (float& x : data) x = n(rng);
    for (float& x : c) x = n(rng);
    std::vector<uint32_t> got(points, UINT32_MAX);
    assign_nearest(data.data(), points, dim, c.data(), clusters, got.data());
    for (int i = 0; i < points; ++i) {
      auto dist = [&](uint32_t j) {
        double s = 0;
        for (int k = 0; k < dim; ++k) s += std::pow(static_cast<double>(data[i * dim + k]) - c[j * dim + k], 2.0);
        return s;
      };
      double best = 1e30;
      for (int j = 0; j < clusters; ++j) best = std::min(best, dist(j));
      ASSERT_LT(got[i], static_cast<uint32_t>(clusters));
      ASSERT_NEAR(dist(got[i]), best, 1e-4 * (1 + best)) << "dim " << dim << " point " << i;
    }
  }
}

TEST(KMeans, AssignNearestBreaksTiesTowardTheFirstCentroid) {
  const std::vector<float> c{1, 1, 5, 5, 1, 1, 5, 5, 1, 1};  // centroids 0, 2, 4 coincide; so do 1, 3
  const std::vector<float> x{1, 1, 5, 5, 3, 3};              // the last point is equidistant from all
  std::vector<uint32_t> got(3);
  assign_nearest(x.data(), 3, 2, c.data(), 5, got.data());
  EXPECT_EQ(got, (std::vector<uint32_t>{0, 1, 0}));
  const std::vector<float> levels{2, -1, 2, -1, 7};  // scalars take another path
  const std::vector<float> y{-1.5f, -0.5f, 1.5f, 2.5f, 6.0f};
  std::vector<uint32_t> codes(5);
  assign_nearest(y.data(), 5, 1, levels.data(), 5, codes.data());
  EXPECT_EQ(codes, (std::vector<uint32_t>{1, 1, 0, 0, 4}));
}

TEST(KMeans, MillionScalarsWithManyLevels) {
  // The NUQ case: 1-D, many points, 16 levels, with weights; every level is used and sorted codes
  // follow the values.
  std::mt19937_64 rng(8);
  std::student_t_distribution<float> t(3.0f);
  std::vector<float> data(1 << 20), w(1 << 20);
  for (float& x : data) x = t(rng);
  for (size_t i = 0; i < w.size(); ++i) w[i] = 1.0f + std::fabs(data[i]);
  KMeansOptions o;
  o.clusters = 16;
  const KMeansResult r = weighted_kmeans(data.data(), data.size(), 1, w.data(), o);
  std::vector<uint32_t> codes(data.size());
  assign_nearest(data.data(), data.size(), 1, r.centroids.data(), 16, codes.data());
  std::vector<size_t> used(16);
  for (uint32_t a : codes) ++used[a];
  for (int j = 0; j < 16; ++j) EXPECT_GT(used[j], 0u) << "level " << j << " at " << r.centroids[j];
  for (float c : r.centroids) EXPECT_TRUE(std::isfinite(c));
}

}  // namespace
}  // namespace ringkv
