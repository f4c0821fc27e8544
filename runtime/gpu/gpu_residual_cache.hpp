#pragma once
// The RVQ cache on the GPU: pages of 128 tokens coded as ResidualCodec codes them (per-token scale,
// a stack of codebooks per layer, KV head and role over strided key or contiguous value channel
// groups, keys before RoPE by default), encoded on the GPU as the pages fill (keys turned back
// before RoPE first) and attended in place by decode steps (keys turned to their positions on the fly).
#include "kernels/residual_pages_gpu.hpp"
#include "kernels/rope.hpp"
#include "kvstore/calibration.hpp"
#include "kvstore/codec_spec.hpp"
#include "runtime/gpu/gpu_paged_cache.hpp"
#include "runtime/gpu/gpu_stream_tables.hpp"

namespace ringkv {

class GpuResidualCache final : public GpuPagedCache {
 public:
  // Refuses a spec the kernels do not take, and a calibration without the spec's codebooks for
  // every layer, KV head and role. rope: the model's RoPE at this capacity.
  GpuResidualCache(const ModelConfig& config, size_t capacity, const CodecSpec& spec, const Calibration& calibration,
                   const RopeTable& rope);
  static size_t bytes_needed(const ModelConfig& config, size_t capacity, const CodecSpec& spec);

 private:
  void encode(Role role, int l, int first, const float* rows, int count, uint8_t* const* slots, cudaStream_t stream) override;
  void decode(Role role, int l, int first, const uint8_t* const* slots, int count, uint16_t* rows, cudaStream_t stream) override;
  void attend_pages(const GpuAttentionStep& step, const SealedPages& pages, cudaStream_t stream) override;
  size_t table_bytes() const override { return codebooks_.bytes(); }

  ResidualShapeGpu shape_;
  GpuStreamTables codebooks_;  // [depth][codes][group] per layer, KV head and role
  DeviceBuffer<float> inv_freq_;  // [64]
};

}  // namespace ringkv
