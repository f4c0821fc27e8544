#pragma once
// The LLaMA-family forward pass on the CPU backend (RMSNorm, RoPE with scaling, grouped-query
// attention over the compressed paged KV store, SwiGLU). Keys go into the store before RoPE; the
// store rotates them when its codec keeps them post-RoPE.
#include <functional>
#include <span>
#include <vector>

#include "kvstore/kv_shard.hpp"
#include "runtime/model_weights.hpp"
#include "runtime/rope_scaling.hpp"
#include "runtime/sequence_attention.hpp"

namespace ringkv {

// One layer's attention inputs for a run of tokens, as calibration collects them.
struct AttentionActivations {
  int layer = 0;
  int first_position = 0;
  int tokens = 0;
  const float* keys_pre_rope = nullptr;  // [tokens][kv_heads][head_dim]
  const float* values = nullptr;         // [tokens][kv_heads][head_dim]
  const float* queries = nullptr;        // post-RoPE [tokens][heads][head_dim]
  // Per KV head: the attention each position received from these tokens' queries (summed over the
  // query heads of the group); filled only when the observer asks for it.
  const std::vector<std::vector<double>>* received = nullptr;
};

struct ActivationObserver {
  bool wants_received_attention = false;
  std::function<void(const AttentionActivations&)> observe;
};

class Transformer {
 public:
  // context_tokens: the longest sequence this run will hold (fixes dynamic-NTK RoPE).
  Transformer(const ModelWeights& weights, size_t context_tokens);

  const ModelConfig& config() const { return weights_.config(); }
  const ModelRope& rope() const { return rope_; }
  // A shard laid out for this model: every layer and KV head, this model's RoPE.
  ShardConfig shard_config(const KVSpec& spec, int page_size, size_t memory_budget_bytes) const;

  // Runs tokens at positions first_position, first_position + 1, ... through the model in one
  // step, appending their keys and values to kv. logits: [tokens][vocab] when all_logits, else
  // [vocab] for the last token.
  void forward(std::span<const int32_t> tokens, int first_position, KVShard& kv, std::vector<float>& logits,
               bool all_logits, const ActivationObserver* observer = nullptr) const;
  // The same with attention over a sequence that may be spread over ranks: tokens are this rank's
  // tokens at the positions of attention.runs() (none is allowed: the rank still takes part in the
  // ring); logits empty when there are none.
  void forward(std::span<const int32_t> tokens, SequenceAttention& attention, std::vector<float>& logits, bool all_logits,
               const ActivationObserver* observer = nullptr) const;

  // forward() over chunks of at most chunk_tokens; logits as forward() gives them for all tokens.
  void prefill(std::span<const int32_t> tokens, int first_position, int chunk_tokens, KVShard& kv,
               std::vector<float>& logits, bool all_logits, const ActivationObserver* observer = nullptr) const;

 private:
  const ModelWeights& weights_;
  ModelRope rope_;
  float attention_scale_;
};

}  // namespace ringkv
