#pragma once
// Writes a LLaMA-family model with random weights in Hugging Face layout (config.json and one
// model.safetensors), for tests and for running RingKV where no trained model is at hand.
#include <cstdint>
#include <string>

#include "runtime/model_config.hpp"
#include "runtime/safetensors.hpp"

namespace ringkv {

// Weights are normal with standard deviation 0.02 (the usual initialization), norms one.
void write_random_model(const std::string& dir, const ModelConfig& config, DType dtype, uint64_t seed);

}  // namespace ringkv
