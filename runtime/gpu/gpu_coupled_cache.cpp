#include "runtime/gpu/gpu_coupled_cache.hpp"

#include "kernels/coupled_pages_gpu.hpp"
#include "kernels/decode_attention_coupled_gpu.hpp"

namespace ringkv {

namespace {
struct CoupledSpec {
  int channels, bits;
};

CoupledSpec coupled_spec(const CodecSpec& spec) {
  return {spec.get_int("channels", 8, 1, 64), spec.get_int("bits", 8, 1, 16)};
}

CoupledShapeGpu page_shape(const CoupledSpec& s) { return {GpuPagedCache::kPage, GpuPagedCache::kDim, s.channels, s.bits}; }

size_t slot_bytes(const CoupledSpec& s) {
  return static_cast<size_t>(GpuPagedCache::kPage) * (GpuPagedCache::kDim / s.channels) * s.bits / 8;
}

size_t table_floats(const CoupledSpec& s) { return static_cast<size_t>(GpuPagedCache::kDim) << s.bits; }

// The decode kernel's view of one layer's pages, for its splits and their workspace.
CoupledPagesGpu view_of(const ModelConfig& c, const CoupledSpec& s, int n_pages) {
  CoupledPagesGpu view;
  view.streams = c.kv_heads, view.n_pages = n_pages, view.page_tokens = GpuPagedCache::kPage, view.head_dim = GpuPagedCache::kDim;
  view.key_channels = view.value_channels = s.channels, view.key_bits = view.value_bits = s.bits;
  return view;
}

// The decode kernel's splits over the most pages.
int most_splits(const ModelConfig& c, const CoupledSpec& s, size_t capacity) {
  return decode_attention_coupled_splits(view_of(c, s, GpuPagedCache::pages_for(capacity)));
}
}  // namespace

size_t GpuCoupledCache::bytes_needed(const ModelConfig& c, size_t capacity, const CodecSpec& spec) {
  const CoupledSpec s = coupled_spec(spec);
  const size_t streams = static_cast<size_t>(c.layers) * c.kv_heads;
  return GpuPagedCache::bytes_needed(c, capacity, slot_bytes(s), most_splits(c, s, capacity)) +
         2 * streams * (table_floats(s) * sizeof(float) + kSealBatch * sizeof(void*));
}

GpuCoupledCache::GpuCoupledCache(const ModelConfig& c, size_t capacity, const CodecSpec& spec, const Calibration& calibration)
    : GpuPagedCache(c, capacity, slot_bytes(coupled_spec(spec)), most_splits(c, coupled_spec(spec), capacity)) {
  const CoupledSpec s = coupled_spec(spec);
  channels_ = s.channels, bits_ = s.bits;
  const int groups = kDim / s.channels;
  const size_t table = table_floats(s), streams = static_cast<size_t>(c.layers) * c.kv_heads;
  for (Role role : {kKeys, kValues}) {
    std::vector<float> host(streams * table);
    for (int l = 0; l < c.layers; ++l)
      for (int h = 0; h < c.kv_heads; ++h) {
        const Tensor& t = calibration.get(table_name(spec, l, h, role == kKeys ? ringkv::Role::Key : ringkv::Role::Value, "centroids"),
                                          {groups, int64_t{1} << s.bits, s.channels});
        std::copy(t.data.begin(), t.data.end(), host.begin() + (static_cast<size_t>(l) * c.kv_heads + h) * table);
      }
    centroids_[role] = DeviceBuffer<float>(host.size());
    centroids_[role].upload(host.data());
    std::vector<const float*> pointers(streams * kSealBatch);
    for (size_t i = 0; i < pointers.size(); ++i)
      pointers[i] = centroids_[role].data() + (i / (kSealBatch * c.kv_heads) * c.kv_heads + i % c.kv_heads) * table;
    centroid_pointers_[role] = DeviceBuffer<const float*>(pointers.size());
    centroid_pointers_[role].upload(pointers.data());
  }
}

const float* const* GpuCoupledCache::centroids_of(Role role, int l) const {
  return centroid_pointers_[role].data() + static_cast<size_t>(l) * kSealBatch * config().kv_heads;
}

void GpuCoupledCache::encode(Role role, int l, int, const float* rows, int count, uint8_t* const* slots, cudaStream_t stream) {
  encode_coupled_pages_gpu(page_shape({channels_, bits_}), rows, count * config().kv_heads, centroids_of(role, l), slots, stream);
}

void GpuCoupledCache::decode(Role role, int l, int, const uint8_t* const* slots, int count, uint16_t* rows, cudaStream_t stream) {
  decode_coupled_pages_gpu(page_shape({channels_, bits_}), slots, count, config().kv_heads, centroids_of(role, l), rows, stream);
}

void GpuCoupledCache::attend_pages(const GpuAttentionStep& step, const SealedPages& p, cudaStream_t stream) {
  CoupledPagesGpu view = view_of(config(), {channels_, bits_}, p.count);
  view.key_pages = p.keys, view.value_pages = p.values;
  view.key_centroids = centroids_of(kKeys, step.layer), view.value_centroids = centroids_of(kValues, step.layer);
  view.tail_keys = p.tail_keys, view.tail_values = p.tail_values, view.tail_tokens = p.tail_tokens;
  decode_attention_coupled_gpu(view, step.queries, step.heads / config().kv_heads, step.scale,
                               decode_attention_coupled_splits(view), split_out(), split_lse(), step.out,
                               step.lse, stream);
}

}  // namespace ringkv
