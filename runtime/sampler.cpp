#include "runtime/sampler.hpp"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <vector>

#include "kernels/error.hpp"

namespace ringkv {

Sampler::Sampler(const SamplingOptions& options) : options_(options), rng_(options.seed) {
  RINGKV_REQUIRE(options.temperature >= 0, "temperature must not be negative");
  RINGKV_REQUIRE(options.top_p > 0 && options.top_p <= 1, "top-p must be in (0, 1]");
}

int32_t Sampler::next(std::span<const float> logits) {
  RINGKV_REQUIRE(!logits.empty(), "no logits to sample from");
  const auto best = std::max_element(logits.begin(), logits.end());
  if (options_.temperature == 0) return static_cast<int32_t>(best - logits.begin());
  std::vector<double> p(logits.size());
  double sum = 0;
  for (size_t i = 0; i < p.size(); ++i) sum += (p[i] = std::exp((logits[i] - *best) / options_.temperature));
  std::vector<int32_t> order(p.size());
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(), [&](int32_t a, int32_t b) { return p[a] > p[b] || (p[a] == p[b] && a < b); });
  size_t keep = 0;
  double mass = 0;
  while (keep < order.size() && mass < options_.top_p * sum) mass += p[order[keep++]];
  std::uniform_real_distribution<double> uniform(0.0, mass);
  double u = uniform(rng_);
  for (size_t k = 0; k < keep; ++k)
    if ((u -= p[order[k]]) <= 0) return order[k];
  return order[keep - 1];
}

}  // namespace ringkv
