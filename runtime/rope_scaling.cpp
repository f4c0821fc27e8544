#include "runtime/rope_scaling.hpp"

#include <algorithm>
#include <cmath>
#include <numbers>

#include "kernels/error.hpp"

namespace ringkv {

namespace {
// Frequencies 1 / base^(2i/d) in fp32 as transformers computes them, so that long positions agree.
std::vector<double> base_inv_freq(int head_dim, double base) {
  std::vector<double> f(head_dim / 2);
  for (int i = 0; i < head_dim / 2; ++i)
    f[i] = static_cast<float>(1.0 / std::pow(base, static_cast<float>(2 * i) / static_cast<float>(head_dim)));
  return f;
}

double original_context(const ModelConfig& c) {
  return c.rope_scaling.original_max_position > 0 ? c.rope_scaling.original_max_position
                                                  : static_cast<double>(c.max_position_embeddings);
}

void llama3(const ModelConfig& c, std::vector<double>& inv_freq) {
  const RopeScaling& s = c.rope_scaling;
  const double old_context = original_context(c);
  const double low_wavelen = old_context / s.low_freq_factor, high_wavelen = old_context / s.high_freq_factor;
  for (double& f : inv_freq) {
    const double wavelen = 2 * std::numbers::pi / f;
    if (wavelen > low_wavelen) {
      f /= s.factor;
    } else if (wavelen >= high_wavelen) {  // between the two: interpolate smoothly
      const double smooth = (old_context / wavelen - s.low_freq_factor) / (s.high_freq_factor - s.low_freq_factor);
      f = (1 - smooth) * f / s.factor + smooth * f;
    }
  }
}

double yarn_mscale(double factor) { return factor <= 1 ? 1.0 : 0.1 * std::log(factor) + 1.0; }

// YaRN: extrapolate the fast-rotating channels, interpolate the slow ones, blend linearly between
// the correction dimensions given by beta_fast and beta_slow rotations over the original context.
double yarn(const ModelConfig& c, std::vector<double>& inv_freq) {
  const RopeScaling& s = c.rope_scaling;
  const int dim = c.head_dim;
  const double base = c.rope_theta, context = original_context(c);
  auto correction_dim = [&](double rotations) {
    return dim * std::log(context / (rotations * 2 * std::numbers::pi)) / (2 * std::log(base));
  };
  const double low = std::max(std::floor(correction_dim(s.beta_fast)), 0.0);
  double high = std::min(std::ceil(correction_dim(s.beta_slow)), static_cast<double>(dim - 1));
  if (high == low) high += 0.001;
  for (size_t i = 0; i < inv_freq.size(); ++i) {
    const double ramp = std::clamp((static_cast<double>(i) - low) / (high - low), 0.0, 1.0);
    const double extrapolation_share = 1 - ramp;
    inv_freq[i] = inv_freq[i] / s.factor * (1 - extrapolation_share) + inv_freq[i] * extrapolation_share;
  }
  return s.attention_factor > 0 ? s.attention_factor : yarn_mscale(s.factor);
}
}  // namespace

ModelRope model_rope(const ModelConfig& config, size_t context_tokens) {
  const RopeScaling& s = config.rope_scaling;
  RINGKV_REQUIRE(s.type == "default" || s.factor > 0, "rope_scaling factor must be positive");
  double base = config.rope_theta;
  if (s.type == "dynamic") {
    const double original = original_context(config);
    if (static_cast<double>(context_tokens) > original) {
      const double d = config.head_dim;
      base *= std::pow(s.factor * static_cast<double>(context_tokens) / original - (s.factor - 1), d / (d - 2));
    }
  }
  std::vector<double> inv_freq = base_inv_freq(config.head_dim, base);
  ModelRope rope;
  if (s.type == "linear")
    for (double& f : inv_freq) f /= s.factor;
  else if (s.type == "llama3")
    llama3(config, inv_freq);
  else if (s.type == "yarn")
    rope.attention_factor = yarn(config, inv_freq);
  else
    RINGKV_REQUIRE(s.type == "default" || s.type == "dynamic", "unsupported rope_scaling type '" + s.type + "'");
  rope.table.head_dim = config.head_dim;
  rope.table.inv_freq.assign(inv_freq.begin(), inv_freq.end());
  return rope;
}

}  // namespace ringkv
