#pragma once
// The bf16 cache on the GPU: keys (after RoPE) and values of every position, per layer
// [capacity][kv_heads][head_dim], the layout the attention kernels read; chunks attend with the
// flash-style prefill kernel, single tokens with the split-keys decode kernel.
#include <vector>

#include "kernels/cuda_check.hpp"
#include "runtime/gpu/gpu_kv_cache.hpp"

namespace ringkv {

class GpuBf16Cache : public GpuWholeSequenceCache {
 public:
  GpuBf16Cache(const ModelConfig& config, size_t capacity);
  static size_t bytes_needed(const ModelConfig& config, size_t capacity);

  void attend(const GpuAttentionStep& step, cudaStream_t stream) override;
  StorageStats storage() const override;
  // Decode steps with the same split count launch the same work: the key count is read on the device.
  int64_t decode_graph_epoch() const override;

 private:
  ModelConfig config_;
  std::vector<DeviceBuffer<uint16_t>> keys_, values_;
  DeviceBuffer<float> split_out_, split_lse_;  // decode attention's partial states, one per split
  DeviceBuffer<int> key_count_;                // the decode step's key count, written on the device
};

}  // namespace ringkv
