#pragma once
// The GPU backend as the commands see it: one sequence on this process's GPU. Built with or without
// CUDA; without it (or without a device) make_gpu_sequence refuses with the reason.
#include <memory>

#include "kvstore/codec_spec.hpp"
#include "runtime/model_weights.hpp"
#include "runtime/token_sequence.hpp"

namespace ringkv {

// A sequence of up to context_tokens tokens, prefilled in chunks of up to chunk_tokens, whose
// weights and KV cache (pages of page_size tokens) live on GPU `device`. Refuses, before
// allocating, a codec the GPU has no kernels for, or a model and context that do not fit in the
// GPU's free memory.
std::unique_ptr<TokenSequence> make_gpu_sequence(const ModelWeights& weights, const KVSpec& spec, size_t context_tokens,
                                                 int chunk_tokens, int page_size, int device);

}  // namespace ringkv
