#pragma once
// The LLaMA-family forward pass on one GPU: the CPU Transformer's steps (RMSNorm, RoPE with
// scaling, grouped-query attention, SwiGLU) with every matrix product a cuBLAS bf16 GEMM and
// attention over a bf16 KV cache held on the device: the flash-style prefill kernel for chunks,
// the split-keys decode kernel for single tokens.
#include <span>
#include <vector>

#include "runtime/gpu/gpu_weights.hpp"
#include "runtime/rope_scaling.hpp"

namespace ringkv {

// Keys (after RoPE) and values of one sequence in bf16, per layer [capacity][kv_heads][head_dim]:
// the layout the attention kernel reads.
class GpuKVCache {
 public:
  GpuKVCache(const ModelConfig& config, size_t capacity);
  static size_t bytes_needed(const ModelConfig& config, size_t capacity);

  size_t capacity() const { return capacity_; }
  uint16_t* keys(int layer) { return keys_[layer].data(); }
  uint16_t* values(int layer) { return values_[layer].data(); }

 private:
  size_t capacity_;
  std::vector<DeviceBuffer<uint16_t>> keys_, values_;
};

class GpuTransformer {
 public:
  // context_tokens: the longest sequence (fixes dynamic-NTK RoPE); max_step_tokens: the most tokens
  // one forward() takes (sizes the activations).
  GpuTransformer(const ModelWeights& weights, size_t context_tokens, int max_step_tokens);

  const ModelConfig& config() const { return config_; }
  // Device bytes of the activations of one step of max_step_tokens tokens.
  static size_t activation_bytes(const ModelConfig& config, int max_step_tokens);

  // Runs tokens at positions first_position, first_position + 1, ... through the model, writing
  // their keys and values into cache. logits: [tokens][vocab] when all_logits, else [vocab].
  void forward(std::span<const int32_t> tokens, int first_position, GpuKVCache& cache, std::vector<float>& logits,
               bool all_logits);

 private:
  ModelConfig config_;
  ModelRope rope_;
  float attention_scale_;
  int max_step_tokens_;
  CudaStream stream_;
  CublasHandle cublas_;
  GpuModelWeights weights_;
  DeviceBuffer<float> inv_freq_;
  // Activations of one step: residual stream, normed rows, projections, attention, MLP, logits.
  DeviceBuffer<int32_t> ids_;
  DeviceBuffer<float> x_, h_, q_, k_, v_, attention_, lse_, gate_, up_, logits_;
  DeviceBuffer<float> split_out_, split_lse_;  // decode attention's partial states, one per split
  DeviceBuffer<uint16_t> rounded_;  // the bf16 input of the next GEMM (or the queries)
};

}  // namespace ringkv
