#include "kernels/sample_token.hpp"

#include <algorithm>
#include <array>
#include <bit>
#include <cmath>
#include <vector>

#include "kernels/error.hpp"

namespace ringkv {

int32_t sample_token_cpu(const float* logits, size_t n, float temperature, float top_p, double u) {
  RINGKV_REQUIRE(n > 0 && n < kMostSampledTokens, "sampling needs 1 to 2^23 - 1 logits");
  RINGKV_REQUIRE(temperature >= 0 && top_p > 0 && top_p <= 1 && u >= 0 && u < 1,
                 "sampling: temperature must not be negative, top-p in (0, 1], u in [0, 1)");
  RINGKV_REQUIRE(std::all_of(logits, logits + n, [](float x) { return std::isfinite(x); }),
                 "the logits hold NaN or infinity: no token can be drawn");
  size_t best = 0;
  for (size_t i = 1; i < n; ++i)
    if (logits[i] > logits[best]) best = i;
  if (temperature == 0) return static_cast<int32_t>(best);
  // Probabilities as fp32 bit patterns (positive floats order as their bits), and their masses.
  std::vector<uint32_t> key(n);
  uint64_t total = 0;
  for (size_t i = 0; i < n; ++i) {
    const float p = token_probability(logits[i], logits[best], temperature);
    key[i] = std::bit_cast<uint32_t>(p);
    total += probability_mass(p);
  }
  const auto mass_of = [&](uint32_t k) { return probability_mass(std::bit_cast<float>(k)); };
  // The nucleus: keys above `edge`, and the first `ties` equal to it (by index). With top_p = 1,
  // every token of positive probability. Else `edge` is the nucleus' smallest probability, found a
  // byte at a time from the top: the mass above each candidate byte (`above`: of the keys greater
  // than the prefix found so far) decides it.
  uint32_t edge = 0;
  uint64_t nucleus = total, ties = 0;
  if (top_p < 1) {
    const uint64_t target = std::max<uint64_t>(1, mass_share(top_p, total));
    uint64_t above = 0;
    for (int shift = 24; shift >= 0; shift -= 8) {
      const uint32_t high_mask = shift == 24 ? 0u : ~0u << (shift + 8);
      std::array<uint64_t, 256> mass{};
      for (size_t i = 0; i < n; ++i)
        if ((key[i] & high_mask) == edge) mass[(key[i] >> shift) & 255u] += mass_of(key[i]);
      int digit = 255;
      while (digit > 0 && above + mass[digit] < target) above += mass[digit--];
      edge |= static_cast<uint32_t>(digit) << shift;
    }
    const uint64_t edge_mass = mass_of(edge);  // tokens of this probability join until the target is reached
    ties = edge_mass > 0 ? (target - above + edge_mass - 1) / edge_mass : 0;
    nucleus = above + ties * edge_mass;
  }
  // The nucleus' masses add up to its mass (at least 1), so the walk ends on a token.
  uint64_t left = std::min(mass_share(u, nucleus), nucleus - 1), tie_rank = 0;
  for (size_t i = 0;; ++i) {
    if (key[i] < edge || (key[i] == edge && tie_rank++ >= ties)) continue;
    const uint64_t m = mass_of(key[i]);
    if (left < m) return static_cast<int32_t>(i);
    left -= m;
  }
}

}  // namespace ringkv
