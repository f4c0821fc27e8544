#pragma once
// The Coupled-Quantization cache on the GPU: pages of 128 tokens coded as CoupledCodec codes them
// (groups of `channels` channels, each one of 2^bits learned centroids per layer, KV head and role,
// from the calibration), encoded on the GPU as the pages fill; decode steps attend through
// per-query lookup tables over the codes in place.
#include "kvstore/calibration.hpp"
#include "kvstore/codec_spec.hpp"
#include "runtime/gpu/gpu_paged_cache.hpp"

namespace ringkv {

class GpuCoupledCache final : public GpuPagedCache {
 public:
  // Refuses a calibration without the spec's centroids for every layer, KV head and role.
  GpuCoupledCache(const ModelConfig& config, size_t capacity, const CodecSpec& spec, const Calibration& calibration);
  static size_t bytes_needed(const ModelConfig& config, size_t capacity, const CodecSpec& spec);

 private:
  void encode(Role role, int l, int first, const float* rows, int count, uint8_t* const* slots, cudaStream_t stream) override;
  void decode(Role role, int l, int first, const uint8_t* const* slots, int count, uint16_t* rows, cudaStream_t stream) override;
  void attend_pages(const GpuAttentionStep& step, const SealedPages& pages, cudaStream_t stream) override;
  size_t table_bytes() const override { return (centroids_[0].size() + centroids_[1].size()) * sizeof(float); }
  const float* const* centroids_of(Role role, int l) const;

  int channels_, bits_;
  DeviceBuffer<float> centroids_[2];                // [layers][kv_heads][groups][2^bits][channels]
  DeviceBuffer<const float*> centroid_pointers_[2];  // [layers][kSealBatch][kv_heads]: a layer's heads, once per page
};

}  // namespace ringkv
