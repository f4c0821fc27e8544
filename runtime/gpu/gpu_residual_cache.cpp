#include "runtime/gpu/gpu_residual_cache.hpp"

#include <algorithm>

#include "kernels/decode_attention_gpu.hpp"
#include "kvstore/codec_residual.hpp"

namespace ringkv {

namespace {
constexpr int kPage = GpuPagedCache::kPage, kDim = GpuPagedCache::kDim;

ResidualShapeGpu shape_of(const CodecSpec& spec) {
  const ResidualParams p = ResidualParams::from(spec, kDim);
  const ResidualShapeGpu shape{p.depth, p.codes, p.group, p.pre_rope};
  require_residual_gpu(shape);
  return shape;
}

size_t table_floats(const ResidualShapeGpu& s) { return static_cast<size_t>(s.depth) * s.codes * s.group; }

// Every page alike, rounded up to 16 bytes.
size_t slot_bytes(const CodecSpec& spec) { return (ResidualCodec::page_bytes(spec, kDim, kPage) + 15) / 16 * 16; }
}  // namespace

size_t GpuResidualCache::bytes_needed(const ModelConfig& c, size_t capacity, const CodecSpec& spec) {
  return GpuPagedCache::bytes_needed(c, capacity, slot_bytes(spec), most_tiled_splits(c, capacity)) +
         GpuStreamTables::bytes_needed(c, table_floats(shape_of(spec))) + kDim / 2 * sizeof(float);
}

GpuResidualCache::GpuResidualCache(const ModelConfig& c, size_t capacity, const CodecSpec& spec, const Calibration& calibration,
                                   const RopeTable& rope)
    : GpuPagedCache(c, capacity, slot_bytes(spec), most_tiled_splits(c, capacity)),
      shape_(shape_of(spec)),
      codebooks_(c, table_floats(shape_), [&](int l, int h, bool keys) {
        return calibration.get(table_name(spec, l, h, keys ? ringkv::Role::Key : ringkv::Role::Value, "codebooks"),
                               {shape_.depth, shape_.codes, shape_.group})
            .data;
      }),
      inv_freq_(rope_frequencies(rope, "RVQ")) {}

void GpuResidualCache::encode(Role role, int l, int first, const float* rows, int count, uint8_t* const* slots,
                              cudaStream_t stream) {
  encode_residual_pages_gpu(shape_, role == kKeys, rows, count, config().kv_heads, first * kPage, codebooks_.of(role == kKeys, l),
                            inv_freq_.data(), slots, stream);
}

void GpuResidualCache::decode(Role role, int l, int first, const uint8_t* const* slots, int count, uint16_t* rows,
                              cudaStream_t stream) {
  decode_residual_pages_gpu(shape_, role == kKeys, slots, count, config().kv_heads, first * kPage, codebooks_.of(role == kKeys, l),
                            inv_freq_.data(), rows, stream);
}

void GpuResidualCache::attend_pages(const GpuAttentionStep& step, const SealedPages& p, cudaStream_t stream) {
  const int kv_heads = config().kv_heads;
  const ResidualPagesGpu pages{tiled(p, inv_freq_.data()), codebooks_.of(true, step.layer), codebooks_.of(false, step.layer),
                                shape_};
  decode_attention_residual_gpu(pages, step.queries, step.heads / kv_heads, step.scale, decode_attention_splits(p.count, kv_heads),
                                split_out(), split_lse(), step.out, step.lse, stream);
}

}  // namespace ringkv
