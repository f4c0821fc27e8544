#include "runtime/gpu/gpu_kv_cache.hpp"

#include "kernels/error.hpp"
#include "runtime/gpu/gpu_bf16_cache.hpp"
#include "runtime/gpu/gpu_int_cache.hpp"

namespace ringkv {

namespace {
// The bits of an INT spec the GPU kernels take, refusing anything else with the reason.
int gpu_int_bits(const KVSpec& spec, const ModelConfig& c, int page_size) {
  RINGKV_REQUIRE(spec.key.name() == "int" && spec.key.text() == spec.value.text(),
                 "the GPU backend holds the KV cache as bf16 or int (the same for keys and values) so far; --kv " +
                     spec.text() + " runs on the CPU backend (--device cpu)");
  const int bits = spec.key.get_int("bits", 4, 1, 8), group = spec.key.get_int("group", 128, 1, 4096);
  spec.key.reject_unused();
  RINGKV_REQUIRE(bits <= 4 && group == 128 && page_size == GpuIntCache::kPage && c.head_dim == GpuIntCache::kDim,
                 "the GPU's INT kernels take 1 to 4 bits, group 128, pages of 128 tokens and head_dim 128; --kv " +
                     spec.text() + " with --page-size " + std::to_string(page_size) + " and head_dim " +
                     std::to_string(c.head_dim) + " runs on the CPU backend (--device cpu)");
  return bits;
}
}  // namespace

void GpuWholeSequenceCache::require_next_positions(const GpuAttentionStep& step) const {
  if (step.tokens == 0) return;
  RINGKV_REQUIRE(step.runs.size() == 1 && step.runs[0].first_position == length_,
                 "a single-GPU KV cache takes tokens at the end of its sequence (position " + std::to_string(length_) + ")");
  RINGKV_REQUIRE(static_cast<size_t>(length_) + step.tokens <= capacity_,
                 "positions up to " + std::to_string(length_ + step.tokens) + " exceed the GPU KV cache's " +
                     std::to_string(capacity_) + " tokens");
}

size_t gpu_kv_cache_bytes(const KVSpec& spec, const ModelConfig& config, size_t capacity, int page_size) {
  if (spec.text() == "bf16") return GpuBf16Cache::bytes_needed(config, capacity);
  return GpuIntCache::bytes_needed(config, capacity, gpu_int_bits(spec, config, page_size));
}

std::unique_ptr<GpuKVCache> make_gpu_kv_cache(const KVSpec& spec, const ModelConfig& config, size_t capacity,
                                              int page_size) {
  if (spec.text() == "bf16") return std::make_unique<GpuBf16Cache>(config, capacity);
  return std::make_unique<GpuIntCache>(config, capacity, gpu_int_bits(spec, config, page_size));
}

}  // namespace ringkv
