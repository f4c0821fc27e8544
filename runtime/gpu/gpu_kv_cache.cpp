#include "runtime/gpu/gpu_kv_cache.hpp"

#include <atomic>

#include "kernels/decode_attention_coupled_gpu.hpp"
#include "kernels/error.hpp"
#include "kvstore/codec.hpp"
#include "kvstore/codec_kvquant.hpp"
#include "kvstore/codec_learning.hpp"
#include "kvstore/codec_residual.hpp"
#include "runtime/gpu/gpu_bf16_cache.hpp"
#include "runtime/gpu/gpu_coupled_cache.hpp"
#include "runtime/gpu/gpu_int_cache.hpp"
#include "runtime/gpu/gpu_kvquant_cache.hpp"
#include "runtime/gpu/gpu_residual_cache.hpp"
#include "runtime/rope_scaling.hpp"

namespace ringkv {

uint32_t GpuKVCache::next_serial() {
  static std::atomic<uint32_t> count{0};
  return count.fetch_add(1) & 0x7fffffffu;
}

namespace {
// The codec of a spec the GPU runs, refusing anything else with the reason: bf16, or INT, CQ,
// KVQuant or RVQ the same for keys and values, over pages of 128 tokens and head_dim 128.
enum class GpuCodec { kBf16, kInt, kCoupled, kKVQuant, kResidual };

GpuCodec gpu_codec(const KVSpec& spec, const ModelConfig& c, int page_size) {
  if (spec.text() == "bf16") return GpuCodec::kBf16;
  const std::string name = spec.key.name();
  RINGKV_REQUIRE((name == "int" || name == "cq" || name == "kvquant" || name == "rvq") && spec.key.text() == spec.value.text(),
                 "the GPU backend holds the KV cache as bf16, int, cq, kvquant or rvq (the same for keys and values); --kv " +
                     spec.text() + " runs on the CPU backend (--device cpu)");
  RINGKV_REQUIRE(page_size == GpuPagedCache::kPage && c.head_dim == GpuPagedCache::kDim,
                 "the GPU's paged caches take pages of 128 tokens and head_dim 128; --kv " + spec.text() + " with --page-size " +
                     std::to_string(page_size) + " and head_dim " + std::to_string(c.head_dim) +
                     " runs on the CPU backend (--device cpu)");
  if (name == "cq") {
    CoupledPagesGpu shape;
    shape.page_tokens = page_size, shape.head_dim = c.head_dim;
    shape.key_channels = shape.value_channels = spec.key.get_int("channels", 8, 1, 64);
    shape.key_bits = shape.value_bits = spec.key.get_int("bits", 8, 1, 16);
    sensitivity_weighting(spec.key);
    spec.key.reject_unused();
    require_decode_attention_coupled(shape);
    return GpuCodec::kCoupled;
  }
  if (name == "kvquant") {
    const KVQuantParams p = KVQuantParams::from(spec.key);
    spec.key.reject_unused();
    require_kvquant_gpu({p.bits, p.outliers, p.sink, p.pre_rope});
    return GpuCodec::kKVQuant;
  }
  if (name == "rvq") {
    const ResidualParams p = ResidualParams::from(spec.key, c.head_dim);
    spec.key.reject_unused();
    require_residual_gpu({p.depth, p.codes, p.group, p.pre_rope});
    return GpuCodec::kResidual;
  }
  const int bits = spec.key.get_int("bits", 4, 1, 8), group = spec.key.get_int("group", 128, 1, 4096);
  spec.key.reject_unused();
  RINGKV_REQUIRE(bits <= 4 && group == 128, "the GPU's INT kernels take 1 to 4 bits and group 128; --kv " + spec.text() +
                                                " runs on the CPU backend (--device cpu)");
  return GpuCodec::kInt;
}

int int_bits(const KVSpec& spec) { return spec.key.get_int("bits", 4, 1, 8); }
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
  switch (gpu_codec(spec, config, page_size)) {
    case GpuCodec::kBf16: return GpuBf16Cache::bytes_needed(config, capacity);
    case GpuCodec::kInt: return GpuIntCache::bytes_needed(config, capacity, int_bits(spec));
    case GpuCodec::kKVQuant: return GpuKVQuantCache::bytes_needed(config, capacity, spec.key);
    case GpuCodec::kResidual: return GpuResidualCache::bytes_needed(config, capacity, spec.key);
    default: return GpuCoupledCache::bytes_needed(config, capacity, spec.key);
  }
}

void require_gpu_kv_calibration(const KVSpec& spec, const Calibration* calibration) {
  RINGKV_REQUIRE(calibration || !codec_needs_calibration(spec.key), "codec spec '" + spec.key.text() +
                                              "' needs learned tables: give a calibration file (ringkv calibrate)");
}

std::unique_ptr<GpuKVCache> make_gpu_kv_cache(const KVSpec& spec, const ModelConfig& config, size_t capacity,
                                              int page_size, const Calibration* calibration) {
  switch (gpu_codec(spec, config, page_size)) {
    case GpuCodec::kBf16: return std::make_unique<GpuBf16Cache>(config, capacity);
    case GpuCodec::kInt: return std::make_unique<GpuIntCache>(config, capacity, int_bits(spec));
    case GpuCodec::kKVQuant:
      require_gpu_kv_calibration(spec, calibration);
      return std::make_unique<GpuKVQuantCache>(config, capacity, spec.key, calibration, model_rope(config, capacity).table);
    case GpuCodec::kResidual:
      require_gpu_kv_calibration(spec, calibration);
      return std::make_unique<GpuResidualCache>(config, capacity, spec.key, *calibration, model_rope(config, capacity).table);
    default:
      require_gpu_kv_calibration(spec, calibration);
      return std::make_unique<GpuCoupledCache>(config, capacity, spec.key, *calibration);
  }
}

}  // namespace ringkv
