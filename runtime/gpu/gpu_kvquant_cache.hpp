#pragma once
// The KVQuant cache on the GPU: pages of 128 tokens coded as KVQuantCodec codes them (per-channel
// pre-RoPE keys, per-token values, NUQ or uniform levels per layer, KV head and role, sparse
// outliers, fp16 sink tokens), encoded on the GPU as the pages fill (keys turned back before RoPE
// first) and attended in place by decode steps (keys turned to their positions on the fly).
#include <vector>

#include "kernels/kvquant_pages_gpu.hpp"
#include "kernels/rope.hpp"
#include "kvstore/calibration.hpp"
#include "kvstore/codec_spec.hpp"
#include "runtime/gpu/gpu_paged_cache.hpp"
#include "runtime/gpu/gpu_stream_tables.hpp"

namespace ringkv {

class GpuKVQuantCache final : public GpuPagedCache {
 public:
  // Refuses a spec the kernels do not take, and (with learned levels) a calibration without the
  // spec's levels for every layer, KV head and role. rope: the model's RoPE at this capacity.
  GpuKVQuantCache(const ModelConfig& config, size_t capacity, const CodecSpec& spec, const Calibration* calibration,
                  const RopeTable& rope);
  static size_t bytes_needed(const ModelConfig& config, size_t capacity, const CodecSpec& spec);

 private:
  void encode(Role role, int l, int first, const float* rows, int count, uint8_t* const* slots, cudaStream_t stream) override;
  void decode(Role role, int l, int first, const uint8_t* const* slots, int count, uint16_t* rows, cudaStream_t stream) override;
  void attend_pages(const GpuAttentionStep& step, const SealedPages& pages, cudaStream_t stream) override;
  size_t page_bytes(Role role, int page) const override;
  // Learned levels count (as the CPU codec counts them); even ones are computed, not stored.
  size_t table_bytes() const override { return shape_.even_levels ? 0 : levels_.bytes(); }
  const float* const* levels_of(Role role, int l) const;

  KVQuantShapeGpu shape_;
  std::vector<size_t> page_sizes_[2];  // per role, pages 0 to the first without sink rows (later pages: its size)
  GpuStreamTables levels_;  // 2^bits levels per layer, KV head and role
  DeviceBuffer<float> inv_freq_;                 // [64]
};

}  // namespace ringkv
