#include "kvstore/kmeans.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <random>

#include "kernels/error.hpp"

namespace ringkv {

namespace {

// Work is split into blocks whose count does not depend on the thread count; per-block partial
// sums are combined in block order, which keeps results bit-identical for any number of threads.
size_t block_size(size_t n) { return std::max<size_t>(4096, (n + 63) / 64); }

// Below this many multiply-adds a loop runs on one thread: waking the team costs more than it saves
// (codecs run thousands of small k-means and encodes).
constexpr double kParallelWork = 1 << 16;

// Nearest of k centroids by squared distance, |c|^2 - 2 x.c (|x|^2 is common to all).
inline uint32_t nearest(const float* x, int dim, const float* centroids, const float* norms, int k) {
  float best = std::numeric_limits<float>::infinity();
  uint32_t arg = 0;
  for (int j = 0; j < k; ++j) {
    const float* c = centroids + static_cast<size_t>(j) * dim;
    float dot = 0;
    for (int i = 0; i < dim; ++i) dot += x[i] * c[i];
    const float d = norms[j] - 2.0f * dot;
    if (d < best) best = d, arg = static_cast<uint32_t>(j);
  }
  return arg;
}

inline double squared_distance(const float* a, const float* b, int dim) {
  double s = 0;
  for (int i = 0; i < dim; ++i) s += (static_cast<double>(a[i]) - b[i]) * (static_cast<double>(a[i]) - b[i]);
  return s;
}

// Greedy k-means++ seeding on a deterministic sample of the points: each step draws a few
// candidates by weighted D^2 sampling and keeps the one that lowers the potential most (plain
// k-means++ too often seeds two centroids in one cluster).
std::vector<float> seed_centroids(const float* data, size_t n, int dim, const std::vector<float>& w, int k,
                                  const KMeansOptions& options) {
  std::mt19937_64 rng(options.seed);
  std::vector<size_t> sample(n);
  std::iota(sample.begin(), sample.end(), size_t{0});
  if (n > options.max_seed_samples) {
    for (size_t i = 0; i < options.max_seed_samples; ++i) std::swap(sample[i], sample[i + rng() % (n - i)]);
    sample.resize(options.max_seed_samples);
    std::sort(sample.begin(), sample.end());
  }
  const long long s = static_cast<long long>(sample.size());
  const int candidates = 2 + static_cast<int>(std::log(static_cast<double>(k)));
  std::vector<float> centroids;
  centroids.reserve(static_cast<size_t>(k) * dim);
  std::vector<double> d2(s, std::numeric_limits<double>::infinity()), mass(s), trial(s), best_trial(s);
  for (long long i = 0; i < s; ++i) mass[i] = w[sample[i]];
  std::uniform_real_distribution<double> uniform(0.0, 1.0);
  for (int j = 0; j < k; ++j) {
    const double total = std::accumulate(mass.begin(), mass.end(), 0.0);
    double best_potential = std::numeric_limits<double>::infinity();
    size_t best = sample[0];
    for (int c = 0; c < (j == 0 ? 1 : candidates); ++c) {
      size_t pick = sample[rng() % s];
      if (total > 0) {
        double r = uniform(rng) * total;
        for (long long i = 0; i < s && r > 0; ++i) r -= mass[i], pick = sample[i];
      }
      const float* x = data + pick * dim;
#pragma omp parallel for schedule(static) if (static_cast<double>(s) * dim > kParallelWork)
      for (long long i = 0; i < s; ++i) trial[i] = std::min(d2[i], squared_distance(data + sample[i] * dim, x, dim));
      double potential = 0;  // summed in order: the same for any thread count
      for (long long i = 0; i < s; ++i) potential += w[sample[i]] * trial[i];
      if (potential < best_potential) best_potential = potential, best = pick, best_trial.swap(trial);
    }
    centroids.insert(centroids.end(), data + best * dim, data + (best + 1) * dim);
    d2.swap(best_trial);
    for (long long i = 0; i < s; ++i) mass[i] = w[sample[i]] * d2[i];
  }
  return centroids;
}

}  // namespace

void assign_nearest(const float* data, size_t n, int dim, const float* centroids, int clusters, uint32_t* out) {
  if (dim == 1) {
    // Sorted centroids and midpoints: a binary search per point instead of a scan.
    std::vector<uint32_t> order(clusters);
    std::iota(order.begin(), order.end(), 0u);
    std::stable_sort(order.begin(), order.end(), [&](uint32_t a, uint32_t b) { return centroids[a] < centroids[b]; });
    std::vector<float> mid(clusters - 1);
    for (int j = 0; j + 1 < clusters; ++j) mid[j] = 0.5f * (centroids[order[j]] + centroids[order[j + 1]]);
#pragma omp parallel for schedule(static) if (static_cast<double>(n) * 8 > kParallelWork)
    for (long long i = 0; i < static_cast<long long>(n); ++i)
      out[i] = order[std::lower_bound(mid.begin(), mid.end(), data[i]) - mid.begin()];
    return;
  }
  std::vector<float> norms(clusters);
  for (int j = 0; j < clusters; ++j) {
    const float* c = centroids + static_cast<size_t>(j) * dim;
    norms[j] = std::inner_product(c, c + dim, c, 0.0f);
  }
#pragma omp parallel for schedule(static) if (static_cast<double>(n) * clusters * dim > kParallelWork)
  for (long long i = 0; i < static_cast<long long>(n); ++i)
    out[i] = nearest(data + static_cast<size_t>(i) * dim, dim, centroids, norms.data(), clusters);
}

KMeansResult weighted_kmeans(const float* data, size_t n, int dim, const float* weights, const KMeansOptions& options) {
  const int k = options.clusters;
  RINGKV_REQUIRE(n > 0 && dim > 0 && k > 0, "k-means needs points, a dimension and clusters");
  KMeansResult result;
  std::vector<float> w(n, 1.0f);
  if (weights) {
    double total = 0;
    for (size_t i = 0; i < n; ++i) total += weights[i];
    RINGKV_REQUIRE(std::isfinite(total), "k-means weights must be finite");
    if (total > 0) std::copy(weights, weights + n, w.begin());
  }
  if (n <= static_cast<size_t>(k)) {  // every point its own centroid; spares repeat points
    for (int j = 0; j < k; ++j) result.centroids.insert(result.centroids.end(), data + (j % n) * dim, data + (j % n + 1) * dim);
    return result;
  }
  result.centroids = seed_centroids(data, n, dim, w, k, options);

  const size_t bs = block_size(n), blocks = (n + bs - 1) / bs;
  std::vector<uint32_t> assignment(n, UINT32_MAX), next(n);
  std::vector<double> block_sums(blocks * k * dim), block_weights(blocks * k), block_inertia(blocks);
  for (int iter = 0; iter < options.iterations; ++iter) {
    assign_nearest(data, n, dim, result.centroids.data(), k, next.data());
    const bool changed = next != assignment;
    assignment.swap(next);
    result.iterations_run = iter + 1;
    if (!changed) break;
#pragma omp parallel for schedule(static) if (blocks > 1)
    for (long long b = 0; b < static_cast<long long>(blocks); ++b) {
      double* sums = &block_sums[b * k * dim];
      double* ws = &block_weights[b * k];
      std::fill(sums, sums + static_cast<size_t>(k) * dim, 0.0);
      std::fill(ws, ws + k, 0.0);
      for (size_t i = static_cast<size_t>(b) * bs; i < std::min(n, static_cast<size_t>(b + 1) * bs); ++i) {
        const uint32_t a = assignment[i];
        ws[a] += w[i];
        for (int c = 0; c < dim; ++c) sums[static_cast<size_t>(a) * dim + c] += static_cast<double>(w[i]) * data[i * dim + c];
      }
    }
    std::vector<double> sums(static_cast<size_t>(k) * dim, 0.0), ws(k, 0.0);
    for (size_t b = 0; b < blocks; ++b) {
      for (size_t i = 0; i < sums.size(); ++i) sums[i] += block_sums[b * k * dim + i];
      for (int j = 0; j < k; ++j) ws[j] += block_weights[b * k + j];
    }
    std::vector<int> empty;
    for (int j = 0; j < k; ++j) {
      if (ws[j] > 0)
        for (int c = 0; c < dim; ++c) result.centroids[static_cast<size_t>(j) * dim + c] = static_cast<float>(sums[j * dim + c] / ws[j]);
      else
        empty.push_back(j);
    }
    // An empty cluster moves to the point worst served by its centroid, so no code goes unused.
    for (int j : empty) {
      double worst = -1;
      size_t arg = 0;
      for (size_t i = 0; i < n; ++i) {
        const double d = w[i] * squared_distance(data + i * dim, &result.centroids[assignment[i] * dim], dim);
        if (d > worst) worst = d, arg = i;
      }
      std::copy(data + arg * dim, data + (arg + 1) * dim, &result.centroids[static_cast<size_t>(j) * dim]);
      assignment[arg] = static_cast<uint32_t>(j);
    }
  }
  // Inertia of the final centroids.
  assign_nearest(data, n, dim, result.centroids.data(), k, assignment.data());
#pragma omp parallel for schedule(static) if (blocks > 1)
  for (long long b = 0; b < static_cast<long long>(blocks); ++b) {
    double s = 0;
    for (size_t i = static_cast<size_t>(b) * bs; i < std::min(n, static_cast<size_t>(b + 1) * bs); ++i)
      s += w[i] * squared_distance(data + i * dim, &result.centroids[assignment[i] * dim], dim);
    block_inertia[b] = s;
  }
  result.inertia = std::accumulate(block_inertia.begin(), block_inertia.end(), 0.0);
  return result;
}

}  // namespace ringkv
