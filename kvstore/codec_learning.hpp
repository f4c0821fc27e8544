#pragma once
// Helpers shared by the codecs that learn tables from calibration samples.
#include <vector>

#include "kvstore/codec.hpp"

namespace ringkv {

// The spec's sensitivity weighting: "uniform", or "attention" (each token weighted by the attention
// it receives, a Fisher-information proxy that needs no back-propagation).
std::string sensitivity_weighting(const CodecSpec& spec);

// Calibration rows in the domain the codec stores: keys rotated to their positions unless the
// codec keeps them pre-RoPE; values unchanged.
std::vector<float> rows_in_stored_domain(const CalibrationSamples& samples, int head_dim, bool rotate,
                                         const RopeTable& rope);

// Sensitivity weights from the attention each token received: scaled to mean 1, then floored at
// 0.1 so that rarely attended tokens still shape the tables.
std::vector<float> sensitivity_from_attention(const std::vector<double>& received);

// Per-token k-means weights for the spec's weighting (ones for uniform).
std::vector<float> token_weights(const CodecSpec& spec, const CalibrationSamples& samples);

}  // namespace ringkv
