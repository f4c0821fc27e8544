#pragma once
// RoPE frequencies of a model, with the rope_scaling variants long-context checkpoints use
// (linear, dynamic NTK, llama3, YaRN), computed as Hugging Face transformers computes them.
#include "kernels/rope.hpp"
#include "runtime/model_config.hpp"

namespace ringkv {

struct ModelRope {
  RopeTable table;
  // YaRN scales cos and sin by this factor for queries and keys alike, which multiplies every
  // attention score by its square; the runtime applies it to the softmax scale instead.
  double attention_factor = 1.0;
};

// context_tokens: the longest sequence the run will hold. Only dynamic NTK depends on it (its
// base grows with the length beyond the original context, fixed here for the whole run so that
// cached keys stay consistent).
ModelRope model_rope(const ModelConfig& config, size_t context_tokens);

}  // namespace ringkv
