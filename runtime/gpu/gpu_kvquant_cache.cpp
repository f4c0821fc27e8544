#include "runtime/gpu/gpu_kvquant_cache.hpp"

#include <algorithm>

#include "kernels/decode_attention_gpu.hpp"
#include "kvstore/codec_kvquant.hpp"

namespace ringkv {

namespace {
constexpr int kPage = GpuPagedCache::kPage, kDim = GpuPagedCache::kDim;

ringkv::Role codec_role(bool keys) { return keys ? ringkv::Role::Key : ringkv::Role::Value; }

KVQuantShapeGpu shape_of(const CodecSpec& spec) {
  const KVQuantParams p = KVQuantParams::from(spec);
  const KVQuantShapeGpu shape{p.bits, p.outliers, p.sink, p.pre_rope, !p.nuq};
  require_kvquant_gpu(shape);
  return shape;
}

// A role's page bytes from page 0 to the first without sink rows (every later page takes as many).
std::vector<size_t> page_sizes(const CodecSpec& spec, bool keys) {
  std::vector<size_t> sizes;
  for (int k = 0; k <= (shape_of(spec).sink + kPage - 1) / kPage; ++k)
    sizes.push_back(KVQuantCodec::page_bytes(spec, codec_role(keys), kDim, kPage, k * kPage));
  return sizes;
}

// Slots hold the largest page of either role (sink rows are fp16), rounded up to 16 bytes.
size_t slot_bytes(const CodecSpec& spec) {
  size_t most = 0;
  for (bool keys : {true, false})
    for (size_t bytes : page_sizes(spec, keys)) most = std::max(most, bytes);
  return (most + 15) / 16 * 16;
}

// The most splits the decode kernels take over a cache of `capacity` tokens.
int most_splits(const ModelConfig& c, size_t capacity, const CodecSpec& spec) {
  return decode_attention_kvquant_splits(std::max(1, GpuPagedCache::pages_for(capacity)), c.kv_heads, shape_of(spec));
}
}  // namespace

size_t GpuKVQuantCache::bytes_needed(const ModelConfig& c, size_t capacity, const CodecSpec& spec) {
  return GpuPagedCache::bytes_needed(c, capacity, slot_bytes(spec), most_splits(c, capacity, spec)) +
         GpuStreamTables::bytes_needed(c, size_t{1} << shape_of(spec).bits) + kDim / 2 * sizeof(float);
}

GpuKVQuantCache::GpuKVQuantCache(const ModelConfig& c, size_t capacity, const CodecSpec& spec, const Calibration* calibration,
                                 const RopeTable& rope)
    : GpuPagedCache(c, capacity, slot_bytes(spec), most_splits(c, capacity, spec)),
      shape_(shape_of(spec)),
      page_sizes_{page_sizes(spec, true), page_sizes(spec, false)},
      levels_(c, size_t{1} << shape_.bits, [&](int l, int h, bool keys) {
        // The CPU codec reads and checks the calibration's levels (or makes uniform ones).
        return KVQuantCodec(spec, codec_role(keys), CodecContext{kDim, kPage, l, h, calibration}).levels();
      }),
      inv_freq_(rope_frequencies(rope, "KVQuant")) {}

const float* const* GpuKVQuantCache::levels_of(Role role, int l) const { return levels_.of(role == kKeys, l); }

size_t GpuKVQuantCache::page_bytes(Role role, int page) const {
  const std::vector<size_t>& sizes = page_sizes_[role];
  return sizes[std::min<size_t>(page, sizes.size() - 1)];
}

void GpuKVQuantCache::encode(Role role, int l, int first, const float* rows, int count, uint8_t* const* slots,
                             cudaStream_t stream) {
  encode_kvquant_pages_gpu(shape_, role == kKeys, rows, count, config().kv_heads, first * kPage, levels_of(role, l),
                           inv_freq_.data(), slots, stream);
}

void GpuKVQuantCache::decode(Role role, int l, int first, const uint8_t* const* slots, int count, uint16_t* rows,
                             cudaStream_t stream) {
  decode_kvquant_pages_gpu(shape_, role == kKeys, slots, count, config().kv_heads, first * kPage, levels_of(role, l),
                           inv_freq_.data(), rows, stream);
}

void GpuKVQuantCache::attend_pages(const GpuAttentionStep& step, const SealedPages& p, cudaStream_t stream) {
  const int kv_heads = config().kv_heads;
  const KVQuantPagesGpu pages{tiled(p, inv_freq_.data()), levels_of(kKeys, step.layer), levels_of(kValues, step.layer), shape_};
  decode_attention_kvquant_gpu(pages, step.queries, step.heads / kv_heads, step.scale,
                               decode_attention_kvquant_splits(p.count, kv_heads, shape_),
                               split_out(), split_lse(), step.out, step.lse, stream);
}

}  // namespace ringkv
