#pragma once
// One sequence on one GPU: the model's weights and the KV cache of the whole context on the
// device, prefill in chunks, decode a token at a time.
#include <memory>

#include "runtime/gpu/gpu_transformer.hpp"
#include "runtime/token_sequence.hpp"

namespace ringkv {

class GpuSequence : public TokenSequence {
 public:
  // Refuses, before allocating, a codec the GPU has no kernels for, or a model and context that do
  // not fit in the GPU's free memory (saying how much they need). chunk_tokens: the largest
  // prefill chunk; page_size: tokens per sealed page of the cache.
  // calibration: the codec's learned tables (CQ, KVQuant, RVQ), or null. decode_graphs: replay
  // decode steps as CUDA graphs (false: plain launches, for comparison).
  GpuSequence(const ModelWeights& weights, const KVSpec& spec, const Calibration* calibration, size_t context_tokens,
              int chunk_tokens, int page_size, bool decode_graphs = true);

  // Starts over, empty, with a fresh cache of `spec` (the weights stay on the device); refuses as
  // the constructor does.
  void restart(const KVSpec& spec, const Calibration* calibration);

  void prefill(std::span<const int32_t> tokens, int chunk_tokens, std::vector<float>& logits, bool all_logits) override;
  void decode(int32_t token, std::vector<float>& logits) override;
  int32_t next_token(Sampler& sampler, std::span<const float>) override { return model_.sample_last(sampler); }
  int length() const override { return cache_->length(); }
  StorageStats kv_storage() const override { return cache_->storage(); }

 private:
  GpuTransformer model_;
  std::unique_ptr<GpuKVCache> cache_;
  size_t context_tokens_;
  int max_chunk_, page_size_;
};

}  // namespace ringkv
