#pragma once
// The LLaMA-family forward pass on one GPU: the CPU Transformer's steps (RMSNorm, RoPE with
// scaling, grouped-query attention, SwiGLU) with every matrix product a cuBLAS bf16 GEMM and
// attention over a KV cache held on the device (GpuKVCache: bf16 or INT pages).
#include <algorithm>
#include <span>
#include <vector>

#include "kernels/cuda_graph.hpp"
#include "runtime/gpu/gpu_kv_cache.hpp"
#include "runtime/gpu/gpu_weights.hpp"
#include "runtime/rope_scaling.hpp"
#include "runtime/sampler.hpp"

namespace ringkv {

class GpuTransformer {
 public:
  // context_tokens: the longest sequence (fixes dynamic-NTK RoPE); max_step_tokens: the most tokens
  // one forward() takes (sizes the activations); decode_graphs: replay a decode step's launches as
  // one CUDA graph where the cache allows (plain launches otherwise, or when false).
  GpuTransformer(const ModelWeights& weights, size_t context_tokens, int max_step_tokens, bool decode_graphs = true);

  const ModelConfig& config() const { return config_; }
  // Device bytes of the activations of one step of max_step_tokens tokens.
  static size_t activation_bytes(const ModelConfig& config, int max_step_tokens);

  // Runs tokens at the positions of runs through the model, appending their keys and values to
  // cache. logits: [tokens][vocab] when all_logits, else [vocab] (empty without tokens).
  void forward(std::span<const int32_t> tokens, std::span<const TokenRun> runs, GpuKVCache& cache,
               std::vector<float>& logits, bool all_logits);
  // The next token, drawn on the GPU by the sampler's method from the logits of the last token of
  // the last forward() (sample_token_gpu).
  int32_t sample_last(Sampler& sampler);

 private:
  // Queues the step on the stream: the embedding of the staged ids, the layers (attention through
  // the cache), the final norm of rows [first_row, tokens) and, when that is one row, its logits.
  void queue_layers(GpuAttentionStep& step, GpuKVCache& cache, int first_row);
  // Rows of logits_: a step's rows beyond it get theirs slice by slice (a chunk of 8192 rows with a
  // 128256-token vocabulary would take 4 GiB at once; slices of 128 take 64 MiB).
  static size_t logit_rows(int max_step_tokens) { return std::min(128, max_step_tokens); }

  ModelConfig config_;
  ModelRope rope_;
  float attention_scale_;
  int max_step_tokens_;
  bool decode_graphs_;
  CudaStream stream_;
  CublasHandle cublas_;
  GpuModelWeights weights_;
  DeviceBuffer<float> inv_freq_;
  // A step's token ids, then their positions, copied to inputs_ in one transfer.
  std::vector<int32_t> staged_inputs_;
  DeviceBuffer<int32_t> inputs_, sampled_;
  // The captured decode step, and the cache epoch it was captured in (the epoch of the last plain
  // decode step until then: a step is captured once its launches ran as plain launches first).
  CudaGraph decode_graph_;
  int64_t graph_epoch_ = -1, seen_epoch_ = -1;
  // Activations of one step: residual stream, projections (stacked, and apart when a step has
  // several tokens), attention, MLP, logits.
  size_t last_logits_ = 0;  // offset of the last token's logits in logits_ (the last slice's)
  DeviceBuffer<float> x_, qkv_, q_, k_, v_, attention_, lse_, gate_, up_, logits_;
  DeviceBuffer<uint16_t> rounded_;  // the bf16 input of the next GEMM (normed rows, or the queries)
};

}  // namespace ringkv
