#include "kvstore/kmeans.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <numeric>
#include <random>

#include "kernels/error.hpp"

namespace ringkv {

namespace {

// Below this many multiply-adds a loop runs on one thread: waking the team costs more than it saves
// (codecs run thousands of small k-means and encodes).
constexpr double kParallelWork = 1 << 16;

// Points are split into blocks of `size` (the last may be short) whose count does not depend on the
// thread count; per-block sums are combined in block order, which keeps results bit-identical for
// any number of threads.
struct Blocks {
  size_t n, size, count;
  Blocks(size_t points, size_t block_size) : n(points), size(block_size), count((points + block_size - 1) / block_size) {}
  size_t begin(size_t b) const { return b * size; }
  size_t end(size_t b) const { return std::min(n, (b + 1) * size); }
};

inline double squared_distance(const float* a, const float* b, int dim) {
  double s = 0;
  for (int i = 0; i < dim; ++i) s += (static_cast<double>(a[i]) - b[i]) * (static_cast<double>(a[i]) - b[i]);
  return s;
}

constexpr int kLanes = 8;
using Lanes = float __attribute__((vector_size(4 * kLanes)));      // GCC/Clang vector extension
using Indices = int32_t __attribute__((vector_size(4 * kLanes)));  // comparison masks and indices

// kLanes floats from `at` (any alignment) into v; by reference: a vector returned by value changes
// the ABI where AVX is not enabled.
inline void load_lanes(const float* at, Lanes& v) { std::memcpy(&v, at, sizeof v); }

// Nearest-centroid search. Scalars (NUQ levels) binary-search the midpoints of the sorted centroids.
// Vectors scan groups of 8 centroids held as 8-lane SIMD vectors ([group][dim]) by |c|^2 - 2 x.c
// (|x|^2 is common to all centroids), several points at a time: each group's lanes are loaded once
// for all of them, and their sums are independent chains that keep the adders busy.
class NearestCentroid {
 public:
  NearestCentroid(const float* centroids, int clusters, int dim) : dim_(dim) {
    if (dim == 1) {
      order_.resize(clusters);
      std::iota(order_.begin(), order_.end(), 0u);
      const auto value = [&](uint32_t j) { return centroids[j]; };
      std::stable_sort(order_.begin(), order_.end(), [&](uint32_t a, uint32_t b) { return value(a) < value(b); });
      // Of equal centroids only the first index can win, as in the scan.
      const auto equal = [&](uint32_t a, uint32_t b) { return value(a) == value(b); };
      order_.erase(std::unique(order_.begin(), order_.end(), equal), order_.end());
      for (size_t j = 0; j + 1 < order_.size(); ++j) mid_.push_back(0.5f * (value(order_[j]) + value(order_[j + 1])));
      return;
    }
    groups_ = (clusters + kLanes - 1) / kLanes;
    lanes_.assign(static_cast<size_t>(groups_) * dim, Lanes{});
    // Padding lanes have an infinite norm: they never win.
    norms_.assign(groups_, Lanes{} + std::numeric_limits<float>::infinity());
    for (int j = 0; j < clusters; ++j) {
      const float* c = centroids + static_cast<size_t>(j) * dim;
      norms_[j / kLanes][j % kLanes] = std::inner_product(c, c + dim, c, 0.0f);
      for (int i = 0; i < dim; ++i) lanes_[static_cast<size_t>(j / kLanes) * dim + i][j % kLanes] = c[i];
    }
  }

  // Each of n points' (data: [n][dim]) first centroid of least distance, as a scan in index order
  // would find it, into out.
  void assign(const float* data, size_t n, uint32_t* out) const {
    size_t i = 0;
    if (dim_ == 1) {
      for (; i < n; ++i) out[i] = order_[std::lower_bound(mid_.begin(), mid_.end(), data[i]) - mid_.begin()];
      return;
    }
    for (; i + kPoints <= n; i += kPoints) nearest<kPoints>(data + i * dim_, out + i);
    for (; i < n; ++i) nearest<1>(data + i * dim_, out + i);
  }

 private:
  static constexpr int kPoints = 4;

  // The nearest centroids of P consecutive points.
  template <int P>
  void nearest(const float* x, uint32_t* out) const {
    const Indices lane = {0, 1, 2, 3, 4, 5, 6, 7};
    Lanes best[P];
    Indices arg[P];
    for (int p = 0; p < P; ++p) best[p] = Lanes{} + std::numeric_limits<float>::infinity(), arg[p] = Indices{};
    for (int g = 0; g < groups_; ++g) {
      const Lanes* c = &lanes_[static_cast<size_t>(g) * dim_];
      Lanes d[P];
      for (int p = 0; p < P; ++p) d[p] = norms_[g];
      for (int i = 0; i < dim_; ++i)
        for (int p = 0; p < P; ++p) {
          const float m = -2.0f * x[p * dim_ + i];
          d[p] += m * c[i];
        }
      for (int p = 0; p < P; ++p) {
        const Indices closer = d[p] < best[p];
        best[p] = closer ? d[p] : best[p];
        arg[p] = closer ? lane + g * kLanes : arg[p];
      }
    }
    for (int p = 0; p < P; ++p) {
      float least = best[p][0];
      int32_t index = arg[p][0];
      for (int l = 1; l < kLanes; ++l)
        if (best[p][l] < least || (best[p][l] == least && arg[p][l] < index)) least = best[p][l], index = arg[p][l];
      out[p] = static_cast<uint32_t>(index);
    }
  }

  int dim_;
  std::vector<uint32_t> order_;  // dim 1: centroid indices by value
  std::vector<float> mid_;       // dim 1: midpoints between neighbours in that order
  int groups_ = 0;
  std::vector<Lanes> lanes_, norms_;
};

// The k-means++ sample: a uniform subset of the points (weights kept), coordinate-major ([dim][size])
// so distance loops vectorize over points.
struct SeedSample {
  size_t size = 0;
  std::vector<size_t> index;  // into the data, ascending
  std::vector<float> coords;
  std::vector<double> weights;
};

SeedSample draw_seed_sample(const float* data, size_t n, int dim, const std::vector<float>& w, size_t limit,
                            std::mt19937_64& rng) {
  SeedSample s;
  s.index.resize(n);
  std::iota(s.index.begin(), s.index.end(), size_t{0});
  if (n > limit) {  // partial Fisher-Yates
    for (size_t i = 0; i < limit; ++i) std::swap(s.index[i], s.index[i + rng() % (n - i)]);
    s.index.resize(limit);
    std::sort(s.index.begin(), s.index.end());
  }
  s.size = s.index.size();
  s.coords.resize(s.size * dim);
  s.weights.resize(s.size);
  for (size_t i = 0; i < s.size; ++i) {
    s.weights[i] = w[s.index[i]];
    for (int c = 0; c < dim; ++c) s.coords[c * s.size + i] = data[s.index[i] * dim + c];
  }
  return s;
}

// The k-means++ sample's points in spans (Blocks) of this many: per span, its D^2 sampling mass and
// its share of the potential.
constexpr size_t kSpanPoints = 256;

// The D^2 sampling mass of sample point i: its weight times its squared distance to the nearest
// centroid so far (before the first centroid, the weight alone).
double sampling_mass(const SeedSample& s, const std::vector<float>& d2, bool seeded, size_t i) {
  return seeded ? s.weights[i] * d2[i] : s.weights[i];
}

// Index of a sample point drawn with probability proportional to its mass, uniformly when all mass
// is zero: a span by the spans' masses, then a point by a walk through that span alone.
size_t draw(const SeedSample& s, const Blocks& spans, const std::vector<double>& span_mass, const std::vector<float>& d2,
            bool seeded, std::mt19937_64& rng) {
  const size_t uniform = rng() % s.size;
  const double total = std::accumulate(span_mass.begin(), span_mass.end(), 0.0);
  if (!(total > 0)) return uniform;
  double r = std::uniform_real_distribution<double>(0.0, 1.0)(rng) * total;
  // Where rounding leaves r past every span, or past every point of one, the last that has mass.
  size_t chosen = spans.count, last_span = 0;
  for (size_t p = 0; p < spans.count; ++p) {
    if (span_mass[p] > 0) last_span = p;
    if (chosen < spans.count) continue;
    if (r < span_mass[p])
      chosen = p;
    else
      r -= span_mass[p];
  }
  if (chosen == spans.count) chosen = last_span, r = span_mass[last_span];
  size_t last = spans.begin(chosen);
  for (size_t i = spans.begin(chosen); i < spans.end(chosen); ++i) {
    const double m = sampling_mass(s, d2, seeded, i);
    if (m > 0) last = i;
    if (r < m) return i;
    r -= m;
  }
  return last;
}

// Sum over [lo, hi) of weights[i] * d[i] in four interleaved partial sums (they overlap the adds'
// latency), in a fixed order.
double weighted_sum(const std::vector<double>& weights, const float* d, size_t lo, size_t hi) {
  double part[4] = {};
  size_t i = lo;
  for (; i + 4 <= hi; i += 4)
    for (int k = 0; k < 4; ++k) part[k] += weights[i + k] * d[i + k];
  for (; i < hi; ++i) part[0] += weights[i] * d[i];
  return (part[0] + part[1]) + (part[2] + part[3]);
}

// d[i] for sample points [lo, hi): the squared distance to y, or d2[i] where that is nearer. The
// coordinates are summed per point in order, kLanes points at a time.
void nearer_distances(const SeedSample& s, int dim, const float* y, const std::vector<float>& d2, size_t lo, size_t hi,
                      float* d) {
  size_t i = lo;
  for (; i + kLanes <= hi; i += kLanes) {
    Lanes sum = {};
    Lanes x, before;
    for (int c = 0; c < dim; ++c) {
      load_lanes(&s.coords[c * s.size + i], x);
      const Lanes diff = x - y[c];
      sum += diff * diff;
    }
    load_lanes(&d2[i], before);
    sum = before < sum ? before : sum;
    std::memcpy(d + i, &sum, sizeof sum);
  }
  for (; i < hi; ++i) {
    float sum = 0.0f;
    for (int c = 0; c < dim; ++c) {
      const float diff = s.coords[c * s.size + i] - y[c];
      sum += diff * diff;
    }
    d[i] = std::min(sum, d2[i]);
  }
}

// Greedy k-means++: each step draws a few candidates by weighted D^2 sampling and keeps the one that
// lowers the potential most (plain k-means++ too often seeds two centroids in one cluster).
std::vector<float> seed_centroids(const float* data, size_t n, int dim, const std::vector<float>& w, int k,
                                  const KMeansOptions& options) {
  std::mt19937_64 rng(options.seed);
  const SeedSample s = draw_seed_sample(data, n, dim, w, std::max<size_t>(1, options.max_seed_samples), rng);
  const int candidates = 2 + static_cast<int>(std::log(static_cast<double>(k)));
  const Blocks spans(s.size, kSpanPoints);
  std::vector<float> d2(s.size, std::numeric_limits<float>::infinity()), trial(candidates * s.size);
  std::vector<double> potential(spans.count * candidates), span_mass(spans.count);  // potential: [span][try]
  for (size_t p = 0; p < spans.count; ++p)
    span_mass[p] = std::accumulate(s.weights.begin() + spans.begin(p), s.weights.begin() + spans.end(p), 0.0);
  std::vector<float> centroids;
  centroids.reserve(static_cast<size_t>(k) * dim);
  for (int j = 0; j < k; ++j) {
    const int tries = j == 0 ? 1 : candidates;
    std::vector<float> picks(static_cast<size_t>(tries) * dim);  // [try][dim]
    for (int t = 0; t < tries; ++t) {
      const size_t p = s.index[draw(s, spans, span_mass, d2, j > 0, rng)];
      std::copy_n(data + p * dim, dim, &picks[t * dim]);
    }
#pragma omp parallel for schedule(static) if (static_cast<double>(s.size) * tries * dim > kParallelWork)
    for (long long p = 0; p < static_cast<long long>(spans.count); ++p)
      for (int t = 0; t < tries; ++t) {
        float* d = &trial[t * s.size];
        nearer_distances(s, dim, &picks[t * dim], d2, spans.begin(p), spans.end(p), d);
        potential[p * candidates + t] = weighted_sum(s.weights, d, spans.begin(p), spans.end(p));
      }
    int best = 0;
    double best_potential = std::numeric_limits<double>::infinity();
    for (int t = 0; t < tries; ++t) {
      double sum = 0;
      for (size_t p = 0; p < spans.count; ++p) sum += potential[p * candidates + t];
      if (sum < best_potential) best_potential = sum, best = t;
    }
    centroids.insert(centroids.end(), picks.begin() + best * dim, picks.begin() + (best + 1) * dim);
    std::copy_n(&trial[best * s.size], s.size, d2.begin());
    for (size_t p = 0; p < spans.count; ++p) span_mass[p] = potential[p * candidates + best];
  }
  return centroids;
}

// One Lloyd pass: assigns every point to its nearest centroid and sums, per block, the weighted points
// of each cluster, the cluster weights, the inertia and the number of changed assignments.
struct LloydPass {
  std::vector<double> sums;     // [block][k][dim]
  std::vector<double> weights;  // [block][k]
  double inertia = 0;
  size_t changed = 0;
};

LloydPass lloyd_pass(const float* data, int dim, const std::vector<float>& w, const std::vector<float>& centroids,
                     int k, const Blocks& blocks, LoadedPoints& points, std::vector<uint32_t>& nearest,
                     std::vector<uint32_t>& assignment) {
  points.assign(centroids.data(), k, nearest.data());
  LloydPass pass;
  pass.sums.assign(blocks.count * k * dim, 0.0);
  pass.weights.assign(blocks.count * k, 0.0);
  std::vector<double> inertia(blocks.count);
  std::vector<size_t> changed(blocks.count);
#pragma omp parallel for schedule(static) if (static_cast<double>(blocks.n) * dim > kParallelWork)
  for (long long b = 0; b < static_cast<long long>(blocks.count); ++b) {
    double* sums = &pass.sums[b * k * dim];
    double* ws = &pass.weights[b * k];
    double block_inertia = 0;  // locals: neighbouring blocks' counters share a cache line
    size_t block_changed = 0;
    for (size_t i = blocks.begin(b); i < blocks.end(b); ++i) {
      const float* x = data + i * dim;
      const uint32_t a = nearest[i];
      block_changed += a != assignment[i];
      assignment[i] = a;
      ws[a] += w[i];
      for (int c = 0; c < dim; ++c) sums[static_cast<size_t>(a) * dim + c] += static_cast<double>(w[i]) * x[c];
      block_inertia += w[i] * squared_distance(x, &centroids[static_cast<size_t>(a) * dim], dim);
    }
    inertia[b] = block_inertia;
    changed[b] = block_changed;
  }
  pass.inertia = std::accumulate(inertia.begin(), inertia.end(), 0.0);
  pass.changed = std::accumulate(changed.begin(), changed.end(), size_t{0});
  return pass;
}

// The `count` points farthest (weighted) from their assigned centroids, farthest first, ties by index;
// only points at a positive distance.
std::vector<size_t> farthest_points(const float* data, size_t n, int dim, const std::vector<float>& w,
                                    const std::vector<float>& centroids, const std::vector<uint32_t>& assignment,
                                    size_t count) {
  std::vector<double> d(n);
#pragma omp parallel for schedule(static) if (static_cast<double>(n) * dim > kParallelWork)
  for (long long i = 0; i < static_cast<long long>(n); ++i)
    d[i] = w[i] * squared_distance(data + i * dim, &centroids[static_cast<size_t>(assignment[i]) * dim], dim);
  std::vector<size_t> order(n);
  std::iota(order.begin(), order.end(), size_t{0});
  count = std::min(count, n);
  std::partial_sort(order.begin(), order.begin() + count, order.end(),
                    [&](size_t a, size_t b) { return d[a] > d[b] || (d[a] == d[b] && a < b); });
  order.resize(count);
  while (!order.empty() && !(d[order.back()] > 0)) order.pop_back();
  return order;
}

// Moves each centroid to the weighted mean of its points. An empty cluster moves to a point worst served
// by its centroid, so no code goes unused; with no such point it keeps its place.
void update_centroids(const float* data, int dim, const std::vector<float>& w, const LloydPass& pass, int k,
                      const Blocks& blocks, const std::vector<uint32_t>& assignment, std::vector<float>& centroids) {
  std::vector<double> sums(static_cast<size_t>(k) * dim, 0.0), ws(k, 0.0);
  for (size_t b = 0; b < blocks.count; ++b) {
    for (size_t i = 0; i < sums.size(); ++i) sums[i] += pass.sums[b * sums.size() + i];
    for (int j = 0; j < k; ++j) ws[j] += pass.weights[b * k + j];
  }
  std::vector<int> empty;
  for (int j = 0; j < k; ++j) {
    if (!(ws[j] > 0)) {
      empty.push_back(j);
      continue;
    }
    for (int c = 0; c < dim; ++c)
      centroids[static_cast<size_t>(j) * dim + c] = static_cast<float>(sums[static_cast<size_t>(j) * dim + c] / ws[j]);
  }
  if (empty.empty()) return;
  const std::vector<size_t> far = farthest_points(data, blocks.n, dim, w, centroids, assignment, empty.size());
  for (size_t e = 0; e < far.size(); ++e)
    std::copy_n(data + far[e] * dim, dim, &centroids[static_cast<size_t>(empty[e]) * dim]);
}

// Point weights: the given ones, or uniform when absent or all zero.
std::vector<float> point_weights(const float* weights, size_t n) {
  std::vector<float> w(n, 1.0f);
  if (!weights) return w;
  double total = 0;
  for (size_t i = 0; i < n; ++i) {
    RINGKV_REQUIRE(weights[i] >= 0 && std::isfinite(weights[i]), "k-means weights must be finite and non-negative");
    total += weights[i];
  }
  if (total > 0) std::copy(weights, weights + n, w.begin());
  return w;
}

class CpuLoadedPoints final : public LoadedPoints {
 public:
  CpuLoadedPoints(const float* data, size_t n, int dim) : data_(data), n_(n), dim_(dim) {}
  void assign(const float* centroids, int clusters, uint32_t* out) override {
    assign_nearest(data_, n_, dim_, centroids, clusters, out);
  }

 private:
  const float* data_;
  size_t n_;
  int dim_;
};

class CpuNearestSearch final : public NearestSearch {
 public:
  std::unique_ptr<LoadedPoints> load(const float* data, size_t n, int dim) const override {
    return std::make_unique<CpuLoadedPoints>(data, n, dim);
  }
};

}  // namespace

const NearestSearch& cpu_nearest_search() {
  static const CpuNearestSearch search;
  return search;
}

void assign_nearest(const float* data, size_t n, int dim, const float* centroids, int clusters, uint32_t* out) {
  RINGKV_REQUIRE(dim > 0 && clusters > 0, "assign_nearest needs a dimension and centroids");
  const NearestCentroid nearest(centroids, clusters, dim);
  const double work = static_cast<double>(n) * (dim == 1 ? 8 : clusters * dim);
  constexpr size_t kChunk = 64;  // points per task: a multiple of the points searched at once
  const long long chunks = static_cast<long long>((n + kChunk - 1) / kChunk);
#pragma omp parallel for schedule(static) if (work > kParallelWork)
  for (long long k = 0; k < chunks; ++k) {
    const size_t first = static_cast<size_t>(k) * kChunk;
    nearest.assign(data + first * dim, std::min(kChunk, n - first), out + first);
  }
}

KMeansResult weighted_kmeans(const float* data, size_t n, int dim, const float* weights, const KMeansOptions& options) {
  const int k = options.clusters;
  RINGKV_REQUIRE(n > 0 && dim > 0 && k > 0, "k-means needs points, a dimension and clusters");
  KMeansResult result;
  if (n <= static_cast<size_t>(k)) {  // every point its own centroid; spares repeat points
    for (int j = 0; j < k; ++j)
      result.centroids.insert(result.centroids.end(), data + (j % n) * dim, data + (j % n + 1) * dim);
    result.assignment.resize(n);
    assign_nearest(data, n, dim, result.centroids.data(), k, result.assignment.data());
    return result;
  }
  const std::vector<float> w = point_weights(weights, n);
  result.centroids = seed_centroids(data, n, dim, w, k, options);
  const Blocks blocks(n, std::max<size_t>(4096, (n + 63) / 64));  // at most 64 blocks of Lloyd sums
  const std::unique_ptr<LoadedPoints> points = (options.search ? *options.search : cpu_nearest_search()).load(data, n, dim);
  std::vector<uint32_t> nearest(n);
  result.assignment.assign(n, UINT32_MAX);
  LloydPass pass = lloyd_pass(data, dim, w, result.centroids, k, blocks, *points, nearest, result.assignment);
  while (result.iterations_run < options.iterations && pass.changed > 0) {
    update_centroids(data, dim, w, pass, k, blocks, result.assignment, result.centroids);
    ++result.iterations_run;
    pass = lloyd_pass(data, dim, w, result.centroids, k, blocks, *points, nearest, result.assignment);
  }
  result.inertia = pass.inertia;  // of the final centroids
  return result;
}

}  // namespace ringkv
