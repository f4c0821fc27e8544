// The token sampler (kernels/sample_token.hpp, runtime/sampler.hpp): greedy, the nucleus against a
// reference that sorts, the draw's distribution, and repeatability.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>
#include <vector>

#include "kernels/error.hpp"
#include "kernels/sample_token.hpp"
#include "runtime/sampler.hpp"

namespace ringkv {
namespace {

// The nucleus by sorting (probability descending, then index), drawn from in index order.
int32_t sorted_reference(const std::vector<float>& logits, float temperature, float top_p, double u) {
  const float largest = *std::max_element(logits.begin(), logits.end());
  std::vector<uint64_t> mass(logits.size());
  std::vector<float> p(logits.size());
  uint64_t total = 0;
  for (size_t i = 0; i < logits.size(); ++i) total += mass[i] = probability_mass(p[i] = token_probability(logits[i], largest, temperature));
  std::vector<int32_t> order(logits.size());
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(), [&](int32_t a, int32_t b) { return p[a] > p[b] || (p[a] == p[b] && a < b); });
  std::vector<bool> kept(logits.size(), false);
  uint64_t nucleus = 0;
  const uint64_t target = top_p < 1 ? std::max<uint64_t>(1, mass_share(top_p, total)) : total;
  for (size_t k = 0; k < order.size() && (top_p < 1 ? nucleus < target : p[order[k]] > 0); ++k) {
    kept[order[k]] = true;
    nucleus += mass[order[k]];
  }
  uint64_t left = std::min(mass_share(u, nucleus), nucleus - 1);
  int32_t last = -1;
  for (size_t i = 0; i < logits.size(); ++i) {
    if (!kept[i]) continue;
    last = static_cast<int32_t>(i);
    if (left < mass[i]) return last;
    left -= mass[i];
  }
  return last;
}

TEST(SampleToken, GreedyTakesTheFirstLargest) {
  const std::vector<float> logits{1, 5, -2, 5, 0};
  EXPECT_EQ(sample_token_cpu(logits.data(), logits.size(), 0, 1, 0.9), 1);
  EXPECT_EQ(sample_token_cpu(logits.data(), logits.size(), 0, 0.1f, 0.3), 1);
}

TEST(SampleToken, NucleusMatchesSortingReference) {
  std::mt19937 rng(4);
  std::normal_distribution<float> normal;
  std::uniform_real_distribution<double> uniform;
  for (size_t n : {1, 2, 7, 1000, 32003})
    for (float temperature : {0.3f, 1.0f, 2.5f})
      for (float top_p : {1.0f, 0.95f, 0.5f, 0.01f})
        for (int trial = 0; trial < 6; ++trial) {
          std::vector<float> logits(n);
          for (float& x : logits) x = 4 * normal(rng);
          if (trial % 2) {  // runs of equal logits: ties at the nucleus' edge
            for (size_t i = 0; i < n; ++i) logits[i] = std::round(logits[i]);
          }
          const double u = uniform(rng);
          ASSERT_EQ(sample_token_cpu(logits.data(), logits.size(), temperature, top_p, u), sorted_reference(logits, temperature, top_p, u))
              << n << " tokens, T " << temperature << ", top-p " << top_p << ", u " << u;
        }
}

TEST(SampleToken, NucleusKeepsTheFirstOfEqualTokens) {
  const std::vector<float> logits(8, 1.0f);  // 8 equal tokens: top-p 0.3 keeps 3 of them, the first 3
  for (double u = 0; u < 1; u += 0.01) EXPECT_LT(sample_token_cpu(logits.data(), logits.size(), 1, 0.3f, u), 3);
  EXPECT_EQ(sample_token_cpu(logits.data(), logits.size(), 1, 0.3f, 0.99), 2);
}

TEST(SampleToken, RefusesLogitsThatAreNotFinite) {
  for (float bad : {std::nanf(""), INFINITY, -INFINITY}) {
    const std::vector<float> logits{0.5f, bad, 1.0f};
    EXPECT_THROW(sample_token_cpu(logits.data(), logits.size(), 0, 1, 0.5), Error);
    EXPECT_THROW(sample_token_cpu(logits.data(), logits.size(), 1, 0.9f, 0.5), Error);
  }
}

TEST(Sampler, DrawsFollowTheProbabilitiesAndRepeat) {
  const std::vector<float> logits{std::log(1.0f), std::log(2.0f), std::log(3.0f), std::log(4.0f)};
  Sampler a({1.0, 1.0, 42}), b({1.0, 1.0, 42});
  std::vector<int> count(4);
  const int draws = 40000;
  for (int d = 0; d < draws; ++d) {
    const int32_t t = a.next(logits);
    ASSERT_EQ(t, b.next(logits)) << "the same seed gives the same tokens";
    ++count[t];
  }
  for (int t = 0; t < 4; ++t) EXPECT_NEAR(count[t] / double(draws), (t + 1) / 10.0, 0.01) << "token " << t;
  Sampler nucleus({1.0, 0.5, 7});  // top-p 0.5: tokens 3 (0.4) and 2 (0.3)
  for (int d = 0; d < 1000; ++d) EXPECT_GE(nucleus.next(logits), 2);
}

}  // namespace
}  // namespace ringkv
