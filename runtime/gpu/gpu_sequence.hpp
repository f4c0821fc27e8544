#pragma once
// One sequence on one GPU: the model's weights and a bf16 KV cache of the whole context on the
// device, prefill in chunks, decode a token at a time.
#include "runtime/gpu/gpu_transformer.hpp"
#include "runtime/token_sequence.hpp"

namespace ringkv {

class GpuSequence : public TokenSequence {
 public:
  // Refuses, before allocating, a model and context that do not fit in the GPU's free memory,
  // saying how much they need. chunk_tokens: the largest prefill chunk.
  GpuSequence(const ModelWeights& weights, size_t context_tokens, int chunk_tokens);

  void prefill(std::span<const int32_t> tokens, int chunk_tokens, std::vector<float>& logits, bool all_logits) override;
  void decode(int32_t token, std::vector<float>& logits) override;
  int length() const override { return length_; }

 private:
  GpuTransformer model_;
  GpuKVCache cache_;
  int max_chunk_;
  int length_ = 0;
};

}  // namespace ringkv
