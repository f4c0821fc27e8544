#include "kvstore/codec_learning.hpp"

#include <algorithm>

#include "kernels/error.hpp"

namespace ringkv {

std::string sensitivity_weighting(const CodecSpec& spec) {
  return spec.get_choice("weights", "uniform", {"uniform", "attention"});
}

std::vector<float> rows_in_stored_domain(const CalibrationSamples& samples, int head_dim, bool rotate,
                                         const RopeTable& rope) {
  std::vector<float> rows(samples.rows, samples.rows + samples.n_rows * head_dim);
  if (rotate) {
    RINGKV_REQUIRE(samples.positions, "calibration samples of keys need positions to apply RoPE");
    for (size_t r = 0; r < samples.n_rows; ++r) apply_rope(rows.data() + r * head_dim, samples.positions[r], rope);
  }
  return rows;
}

std::vector<float> sensitivity_from_attention(const std::vector<double>& received) {
  double mean = 0;
  for (double r : received) mean += r;
  mean = std::max(mean / std::max<size_t>(received.size(), 1), 1e-30);
  std::vector<float> w(received.size());
  for (size_t t = 0; t < received.size(); ++t) w[t] = static_cast<float>(std::max(received[t] / mean, 0.1));
  return w;
}

std::vector<float> token_weights(const CodecSpec& spec, const CalibrationSamples& samples) {
  if (sensitivity_weighting(spec) == "uniform") return std::vector<float>(samples.n_rows, 1.0f);
  RINGKV_REQUIRE(samples.weights, "codec spec '" + spec.text() +
                                      "' asks for weights=attention but the calibration run collected no attention "
                                      "statistics");
  return std::vector<float>(samples.weights, samples.weights + samples.n_rows);
}

}  // namespace ringkv
