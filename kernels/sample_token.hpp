#pragma once
// Choosing the next token from a row of logits, the CPU twin of sample_token_gpu: greedy at
// temperature 0 (the first largest logit); else the probabilities p = exp((logit - max) / T)
// restricted to the nucleus (the fewest tokens, by probability and then by index, whose mass
// reaches top_p of the total), and the token where u (uniform in [0, 1)) times the nucleus' mass
// falls in the cumulative mass of the nucleus taken in index order. Linear time: the nucleus is
// found by a byte-wise search for its smallest probability, not by sorting the vocabulary.
// Masses are sums of fixed-point integers (probability times 2^40), so every order of summation
// (the GPU's atomics too) gives the same nucleus and the same token. Logits holding NaN or
// infinity are refused.
#include <cmath>
#include <cstddef>
#include <cstdint>

#include "kernels/host_device.hpp"

namespace ringkv {

// A token's probability, exp((logit - largest) / temperature) in double rounded to float (the
// CPU's and the GPU's double exponentials differ by an ulp at most, so the floats rarely differ).
RINGKV_HOST_DEVICE inline float token_probability(float logit, float largest, float temperature) {
  return static_cast<float>(exp(static_cast<double>((logit - largest) / temperature)));
}
// Its mass as summed: the probability (in [0, 1]) times 2^40, truncated (vocabularies under 2^23 tokens).
RINGKV_HOST_DEVICE inline uint64_t probability_mass(float p) { return static_cast<uint64_t>(p * 0x1p40f); }
// The mass of the nucleus (top_p of the total), and where u falls in it.
RINGKV_HOST_DEVICE inline uint64_t mass_share(double share, uint64_t mass) {
  return static_cast<uint64_t>(share * static_cast<double>(mass));
}

constexpr int kMostSampledTokens = 1 << 23;

int32_t sample_token_cpu(const float* logits, size_t n, float temperature, float top_p, double u);

}  // namespace ringkv
