#pragma once
// Choosing the next token from logits: greedy, or temperature with nucleus (top-p) sampling from
// a seeded generator, so that a run is repeatable (the method: kernels/sample_token.hpp).
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
  // The next token from logits [vocab], on the CPU.
  int32_t next(std::span<const float> logits);
  // The uniform number in [0, 1) that picks the next token (drawn from the generator only at a
  // positive temperature), for a sampler that runs on the GPU.
  double draw();
  const SamplingOptions& options() const { return options_; }

 private:
  SamplingOptions options_;
  std::mt19937_64 rng_;
};

}  // namespace ringkv
