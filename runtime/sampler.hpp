#pragma once
// Choosing the next token from logits: greedy, or temperature with nucleus (top-p) sampling from
// a seeded generator, so that a run is repeatable.
#include <cstdint>
#include <random>
#include <span>

namespace ringkv {

struct SamplingOptions {
  double temperature = 0;  // 0: greedy
  double top_p = 1.0;      // keep the smallest set of tokens whose probability reaches top_p
  uint64_t seed = 0;
};

class Sampler {
 public:
  explicit Sampler(const SamplingOptions& options);
  int32_t next(std::span<const float> logits);

 private:
  SamplingOptions options_;
  std::mt19937_64 rng_;
};

}  // namespace ringkv
