#include "runtime/sampler.hpp"

#include "kernels/error.hpp"
#include "kernels/sample_token.hpp"

namespace ringkv {

Sampler::Sampler(const SamplingOptions& options) : options_(options), rng_(options.seed) {
  RINGKV_REQUIRE(options.temperature >= 0, "temperature must not be negative");
  RINGKV_REQUIRE(static_cast<float>(options.top_p) > 0 && options.top_p <= 1, "top-p must be in (0, 1]");
}

double Sampler::draw() {
  return options_.temperature > 0 ? std::uniform_real_distribution<double>(0.0, 1.0)(rng_) : 0.0;
}

int32_t Sampler::next(std::span<const float> logits) {
  const double u = draw();
  return sample_token_cpu(logits.data(), logits.size(), static_cast<float>(options_.temperature), static_cast<float>(options_.top_p), u);
}

}  // namespace ringkv
