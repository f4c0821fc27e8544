#pragma once
// The INT-coded cache on the GPU (KIVI-style: per-channel key and per-token value grids over pages
// of 128 tokens, head_dim 128, 1 to 4 bits; codes byte for byte as the CPU writes them).
#include "runtime/gpu/gpu_paged_cache.hpp"

namespace ringkv {

class GpuIntCache final : public GpuPagedCache {
 public:
  GpuIntCache(const ModelConfig& config, size_t capacity, int bits);
  static size_t bytes_needed(const ModelConfig& config, size_t capacity, int bits);

 private:
  void encode(Role role, int l, int first, const float* rows, int count, uint8_t* const* slots, cudaStream_t stream) override;
  void decode(Role role, int l, int first, const uint8_t* const* slots, int count, uint16_t* rows, cudaStream_t stream) override;
  void attend_pages(const GpuAttentionStep& step, const SealedPages& pages, cudaStream_t stream) override;

  int bits_;
};

}  // namespace ringkv
