#include "runtime/gpu/gpu_int_cache.hpp"

#include <algorithm>

#include "kernels/decode_attention_gpu.hpp"

namespace ringkv {

namespace {
// Grids (lo, step) of 128 channels or tokens in fp16, then the codes: a multiple of 16 bytes.
size_t slot_bytes(int bits) { return 4 * GpuPagedCache::kDim + static_cast<size_t>(GpuPagedCache::kPage) * GpuPagedCache::kDim * bits / 8; }
// The decode kernel's splits over the most pages.
int most_splits(const ModelConfig& c, size_t capacity, int bits) {
  return decode_attention_int_splits(std::max(1, GpuPagedCache::pages_for(capacity)), c.kv_heads, bits);
}
}  // namespace

size_t GpuIntCache::bytes_needed(const ModelConfig& c, size_t capacity, int bits) {
  return GpuPagedCache::bytes_needed(c, capacity, slot_bytes(bits), most_splits(c, capacity, bits));
}

GpuIntCache::GpuIntCache(const ModelConfig& c, size_t capacity, int bits)
    : GpuPagedCache(c, capacity, slot_bytes(bits), most_splits(c, capacity, bits)), bits_(bits) {}

void GpuIntCache::encode(Role role, int, int, const float* rows, int count, uint8_t* const* slots, cudaStream_t stream) {
  encode_int_pages_gpu(rows, count * config().kv_heads, bits_, role == kKeys, slots, stream);
}

void GpuIntCache::decode(Role role, int, int, const uint8_t* const* slots, int count, uint16_t* rows, cudaStream_t stream) {
  decode_int_pages_gpu(slots, count, config().kv_heads, bits_, role == kKeys, rows, stream);
}

void GpuIntCache::attend_pages(const GpuAttentionStep& step, const SealedPages& p, cudaStream_t stream) {
  const int kv_heads = config().kv_heads;
  const IntPagesGpu pages{p.keys, p.values, kv_heads, p.count, bits_, p.tail_keys, p.tail_values, p.tail_tokens};
  decode_attention_int_gpu(pages, step.queries, step.heads / kv_heads, step.scale, decode_attention_int_splits(p.count, kv_heads, bits_),
                           split_out(), split_lse(), step.out, step.lse, stream);
}

}  // namespace ringkv
