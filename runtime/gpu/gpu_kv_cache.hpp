#pragma once
// The KV cache of one sequence on the GPU, behind one interface for every codec the GPU runs: each
// layer's step appends the new tokens' keys and values and computes their queries' attention over
// the cache as the CPU store gives it (every query sees the cache a token-by-token decode would see
// right after that query's token was appended).
#include <cuda_runtime.h>

#include <cstdint>
#include <memory>
#include <span>
#include <string>

#include "kernels/cuda_check.hpp"
#include "kvstore/calibration.hpp"
#include "kvstore/codec_spec.hpp"
#include "kvstore/kv_shard.hpp"
#include "runtime/model_config.hpp"
#include "runtime/sequence_layout.hpp"

namespace ringkv {

// One layer's attention inputs and outputs for a run of tokens (device pointers).
struct GpuAttentionStep {
  int layer = 0, tokens = 0;
  std::span<const TokenRun> runs;  // the tokens' positions
  int heads = 1, kv_heads = 1, head_dim = 128;
  float scale = 1;
  const float* queries = nullptr;          // after RoPE [tokens][heads][head_dim]
  const uint16_t* queries_bf16 = nullptr;  // the same rounded to bf16
  const float* keys = nullptr;             // after RoPE [tokens][kv_heads][head_dim]
  const float* values = nullptr;           // [tokens][kv_heads][head_dim]
  float* out = nullptr;                    // [tokens][heads][head_dim]
  float* lse = nullptr;                    // [tokens][heads]
  const int* positions = nullptr;          // [tokens], each token's position
};

class GpuKVCache {
 public:
  virtual ~GpuKVCache() = default;
  // Appends the step's tokens to its layer and writes their attention.
  virtual void attend(const GpuAttentionStep& step, cudaStream_t stream) = 0;
  // Every layer took the step's tokens: the sequence is that much longer.
  virtual void advance(const GpuAttentionStep& step) = 0;
  // Waits for the work queued on `stream` (a cache that exchanges data with other ranks watches
  // them while it waits).
  virtual void wait(cudaStream_t stream) { RINGKV_CHECK_CUDA(cudaStreamSynchronize(stream)); }
  virtual int length() const = 0;
  virtual size_t capacity() const = 0;
  // Decode steps that queue the same launches (the same pages, grids and pointers; the position
  // read on the device) share a value, so one CUDA graph captured from one of them replays the
  // rest; -1: the next decode step must run as plain launches (it seals a page, or repoints the
  // attention at new pages). Caches of different objects never share a value.
  virtual int64_t decode_graph_epoch() const { return -1; }
  // What the cache's tokens take as stored (sealed pages, tails, the codec's learned tables), as the
  // CPU store reports it, for bits-per-element reports.
  virtual StorageStats storage() const = 0;

 protected:
  // An epoch for decode_graph_epoch from a count of this cache's: unique to this cache in the process.
  int64_t epoch_of(int count) const { return static_cast<int64_t>(serial_) << 32 | static_cast<uint32_t>(count); }

 private:
  const uint32_t serial_ = next_serial();
  static uint32_t next_serial();
};

// A cache that holds the whole sequence on this GPU: steps append at its end.
class GpuWholeSequenceCache : public GpuKVCache {
 public:
  explicit GpuWholeSequenceCache(size_t capacity) : capacity_(capacity) {}
  void advance(const GpuAttentionStep& step) override { length_ += step.tokens; }
  int length() const override { return length_; }
  size_t capacity() const override { return capacity_; }

 protected:
  // Refuses a step whose tokens do not continue the sequence (one run at length()) or do not fit.
  void require_next_positions(const GpuAttentionStep& step) const;

  size_t capacity_;
  int length_ = 0;
};

// The device bytes a cache of `capacity` tokens takes; refuses, naming the reason, a spec or shape
// the GPU has no kernels for (before anything is allocated).
size_t gpu_kv_cache_bytes(const KVSpec& spec, const ModelConfig& config, size_t capacity, int page_size);
// Refuses a spec with learned tables (CQ, RVQ, KVQuant with NUQ levels) without a calibration.
void require_gpu_kv_calibration(const KVSpec& spec, const Calibration* calibration);
std::unique_ptr<GpuKVCache> make_gpu_kv_cache(const KVSpec& spec, const ModelConfig& config, size_t capacity,
                                              int page_size, const Calibration* calibration);

}  // namespace ringkv
