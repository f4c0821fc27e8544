#include "runtime/gpu/gpu_transformer.hpp"

#include <algorithm>
#include <cmath>

#include "kernels/sample_token_gpu.hpp"
#include "kernels/transformer_ops_gpu.hpp"

namespace ringkv {

namespace {
size_t kv_row(const ModelConfig& c) { return static_cast<size_t>(c.kv_heads) * c.head_dim; }
}  // namespace

size_t GpuTransformer::activation_bytes(const ModelConfig& c, int max_step_tokens) {
  const size_t n = static_cast<size_t>(max_step_tokens), q_dim = static_cast<size_t>(c.heads) * c.head_dim;
  const size_t widest = std::max({static_cast<size_t>(c.hidden_size), q_dim, static_cast<size_t>(c.intermediate_size)});
  const size_t floats = n * (c.hidden_size + 3 * q_dim + 4 * kv_row(c) + c.heads + 2 * c.intermediate_size) +
                        logit_rows(max_step_tokens) * c.vocab_size;
  return floats * sizeof(float) + n * widest * sizeof(uint16_t) + 2 * n * sizeof(int32_t) + CublasHandle::kWorkspaceBytes;
}

GpuTransformer::GpuTransformer(const ModelWeights& weights, size_t context_tokens, int max_step_tokens, bool decode_graphs)
    : config_(weights.config()),
      rope_(model_rope(config_, context_tokens)),
      max_step_tokens_(max_step_tokens),
      decode_graphs_(decode_graphs),
      cublas_(stream_.get()),
      weights_(weights) {
  const ModelConfig& c = config_;
  RINGKV_REQUIRE(c.head_dim == 64 || c.head_dim == 128,
                 "the GPU attention kernel takes head_dim 64 or 128; this model has " + std::to_string(c.head_dim));
  RINGKV_REQUIRE(max_step_tokens > 0, "a GPU forward step needs room for at least one token");
  attention_scale_ = static_cast<float>(rope_.attention_factor * rope_.attention_factor / std::sqrt(c.head_dim));
  // cublas_ holds its workspace already: the rest of a step's activations must still fit.
  require_gpu_memory(activation_bytes(c, max_step_tokens) - CublasHandle::kWorkspaceBytes,
                     "a step of " + std::to_string(max_step_tokens) + " tokens");
  inv_freq_ = DeviceBuffer<float>(rope_.table.inv_freq.size());
  inv_freq_.upload(rope_.table.inv_freq.data());
  const size_t n = static_cast<size_t>(max_step_tokens), q_dim = static_cast<size_t>(c.heads) * c.head_dim;
  staged_inputs_.resize(2 * n), inputs_ = DeviceBuffer<int32_t>(2 * n);
  sampled_ = DeviceBuffer<int32_t>(1);
  x_ = DeviceBuffer<float>(n * c.hidden_size);
  qkv_ = DeviceBuffer<float>(n * (q_dim + 2 * kv_row(c)));
  q_ = DeviceBuffer<float>(n * q_dim), k_ = DeviceBuffer<float>(n * kv_row(c)), v_ = DeviceBuffer<float>(n * kv_row(c));
  attention_ = DeviceBuffer<float>(n * q_dim), lse_ = DeviceBuffer<float>(n * c.heads);
  gate_ = DeviceBuffer<float>(n * c.intermediate_size), up_ = DeviceBuffer<float>(n * c.intermediate_size);
  logits_ = DeviceBuffer<float>(logit_rows(max_step_tokens) * c.vocab_size);
  rounded_ = DeviceBuffer<uint16_t>(n * std::max({static_cast<size_t>(c.hidden_size), q_dim, static_cast<size_t>(c.intermediate_size)}));
}

void GpuTransformer::forward(std::span<const int32_t> tokens, std::span<const TokenRun> runs, GpuKVCache& cache,
                             std::vector<float>& logits, bool all_logits) {
  const ModelConfig& c = config_;
  const int n = static_cast<int>(tokens.size());
  RINGKV_REQUIRE(n <= max_step_tokens_, "a GPU forward step of " + std::to_string(n) + " tokens exceeds the " +
                                            std::to_string(max_step_tokens_) + " it was sized for");
  int in_runs = 0;
  for (const TokenRun& run : runs) in_runs += run.tokens;
  RINGKV_REQUIRE(in_runs == n, "forward: " + std::to_string(n) + " tokens for " + std::to_string(in_runs) + " positions");
  for (int32_t t : tokens)
    RINGKV_REQUIRE(t >= 0 && t < c.vocab_size,
                   "token id " + std::to_string(t) + " is outside the vocabulary of " + std::to_string(c.vocab_size));
  logits.clear();
  cudaStream_t s = stream_.get();
  // One token's q, k and v lie side by side in its row of the stacked projection; several tokens'
  // are copied apart (queue_layers).
  const size_t q_dim = static_cast<size_t>(c.heads) * c.head_dim;
  float* stacked = qkv_.data();
  GpuAttentionStep step{0, n, runs, c.heads, c.kv_heads, c.head_dim, attention_scale_,
                        n == 1 ? stacked : q_.data(), rounded_.data(), n == 1 ? stacked + q_dim : k_.data(),
                        n == 1 ? stacked + q_dim + kv_row(c) : v_.data(), attention_.data(), lse_.data(), inputs_.data() + n};
  if (n == 0) {  // no tokens here, but the cache may still take part in a ring over the ranks
    for (step.layer = 0; step.layer < c.layers; ++step.layer) cache.attend(step, s);
    cache.advance(step);
    cache.wait(s);
    return;
  }
  // The ids and positions in one copy; pageable memory is staged before the call returns, so the
  // next step may rewrite it.
  int32_t* staged = staged_inputs_.data();
  std::copy(tokens.begin(), tokens.end(), staged);
  int32_t* position = staged + n;
  for (const TokenRun& run : runs)
    for (int i = 0; i < run.tokens; ++i) *position++ = run.first_position + i;
  RINGKV_CHECK_CUDA(cudaMemcpyAsync(inputs_.data(), staged, 2 * static_cast<size_t>(n) * sizeof(int32_t),
                                    cudaMemcpyHostToDevice, s));
  const int first_row = all_logits ? 0 : n - 1, out_rows = n - first_row;
  // A decode step at the cache's end replays the graph of its epoch; the first step of an epoch
  // runs as plain launches (kernels load and set up outside a capture), the second is captured.
  const bool next_token = n == 1 && runs.size() == 1 && runs[0].first_position == cache.length();
  const int64_t epoch = decode_graphs_ && next_token ? cache.decode_graph_epoch() : -1;
  if (epoch >= 0 && epoch == graph_epoch_) {
    decode_graph_.launch(s);
  } else if (epoch >= 0 && epoch == seen_epoch_) {
    graph_epoch_ = -1;
    decode_graph_.capture(s, [&] { queue_layers(step, cache, first_row); });
    graph_epoch_ = epoch;
    decode_graph_.launch(s);
  } else {
    queue_layers(step, cache, first_row);
    seen_epoch_ = epoch;
  }
  cache.advance(step);
  // The watched wait first: a copy into pageable memory would block the host until the stream
  // drains, and a dead peer would leave it there.
  cache.wait(s);
  logits.resize(static_cast<size_t>(out_rows) * c.vocab_size);
  // Several rows: their logits slice by slice (one row's came with the step); the stream orders
  // each slice's copy out before the next slice's product overwrites it.
  const size_t slice = logit_rows(max_step_tokens_), vocab = c.vocab_size;
  for (size_t begin = 0; begin < static_cast<size_t>(out_rows); begin += slice) {
    const size_t rows = std::min(slice, out_rows - begin);
    if (out_rows > 1)
      cublas_.linear(rounded_.data() + begin * c.hidden_size, static_cast<int>(rows), weights_.lm_head(), logits_.data());
    RINGKV_CHECK_CUDA(cudaMemcpyAsync(logits.data() + begin * vocab, logits_.data(), rows * vocab * sizeof(float),
                                      cudaMemcpyDeviceToHost, s));
    last_logits_ = (rows - 1) * vocab;
  }
  stream_.synchronize();
}

void GpuTransformer::queue_layers(GpuAttentionStep& step, GpuKVCache& cache, int first_row) {
  const ModelConfig& c = config_;
  cudaStream_t s = stream_.get();
  const int n = step.tokens, hidden = c.hidden_size, d = c.head_dim, q_dim = c.heads * d;
  const size_t rows = static_cast<size_t>(n), kv_width = kv_row(c), qkv_width = q_dim + 2 * kv_width;
  const float eps = static_cast<float>(c.rms_norm_eps);
  embed_rows_gpu(weights_.embedding().data.data(), inputs_.data(), n, hidden, x_.data(), s);
  // rounded_ = bf16(src), then x_ += rounded_ . w^T: a sublayer's output joins the residual stream.
  auto add_linear = [&](const float* src, size_t width, const DeviceMatrix& w) {
    to_bf16_gpu(src, rows * width, rounded_.data(), s);
    cublas_.linear(rounded_.data(), n, w, x_.data(), true);
  };
  for (int l = 0; l < c.layers; ++l) {
    const GpuLayerWeights& w = weights_.layers()[l];
    rms_norm_gpu(x_.data(), n, hidden, w.attention_norm.data(), eps, rounded_.data(), s);
    cublas_.linear(rounded_.data(), n, w.qkv, qkv_.data());
    // The q heads and the k heads are side by side in each row: one RoPE launch turns both.
    rope_heads_gpu(qkv_.data(), n, qkv_width, c.heads + c.kv_heads, d, step.positions, inv_freq_.data(), s);
    if (n > 1) {
      const float* parts[3] = {qkv_.data(), qkv_.data() + q_dim, qkv_.data() + q_dim + kv_width};
      float* apart[3] = {q_.data(), k_.data(), v_.data()};
      for (int p = 0; p < 3; ++p) {
        const size_t width = (p == 0 ? q_dim : kv_width) * sizeof(float);
        RINGKV_CHECK_CUDA(cudaMemcpy2DAsync(apart[p], width, parts[p], qkv_width * sizeof(float), width, rows,
                                            cudaMemcpyDeviceToDevice, s));
      }
    }
    to_bf16_gpu(step.queries, rows * q_dim, rounded_.data(), s);
    step.layer = l;
    cache.attend(step, s);
    add_linear(attention_.data(), q_dim, w.o);

    rms_norm_gpu(x_.data(), n, hidden, w.mlp_norm.data(), eps, rounded_.data(), s);
    cublas_.linear(rounded_.data(), n, w.gate, gate_.data());
    cublas_.linear(rounded_.data(), n, w.up, up_.data());
    silu_mul_gpu(gate_.data(), up_.data(), rows * c.intermediate_size, s);
    add_linear(gate_.data(), c.intermediate_size, w.down);
  }
  const int out_rows = n - first_row;
  rms_norm_gpu(x_.data() + static_cast<size_t>(first_row) * hidden, out_rows, hidden, weights_.final_norm().data(), eps,
               rounded_.data(), s);
  if (out_rows == 1) cublas_.linear(rounded_.data(), 1, weights_.lm_head(), logits_.data());
}

int32_t GpuTransformer::sample_last(Sampler& sampler) {
  const SamplingOptions& o = sampler.options();
  sample_token_gpu(logits_.data() + last_logits_, config_.vocab_size, static_cast<float>(o.temperature),
                   static_cast<float>(o.top_p), sampler.draw(), sampled_.data(), stream_.get());
  int32_t token = 0;
  RINGKV_CHECK_CUDA(cudaMemcpyAsync(&token, sampled_.data(), sizeof token, cudaMemcpyDeviceToHost, stream_.get()));
  stream_.synchronize();
  RINGKV_REQUIRE(token >= 0, "the logits hold NaN or infinity: no token can be drawn");
  return token;
}

}  // namespace ringkv
