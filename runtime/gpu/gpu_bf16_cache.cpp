#include "runtime/gpu/gpu_bf16_cache.hpp"

#include <algorithm>

#include "kernels/decode_attention_bf16_gpu.hpp"
#include "kernels/prefill_attention_gpu.hpp"
#include "kernels/transformer_ops_gpu.hpp"

namespace ringkv {

namespace {
size_t kv_row(const ModelConfig& c) { return static_cast<size_t>(c.kv_heads) * c.head_dim; }
size_t max_splits(const ModelConfig& c, size_t capacity) {
  return static_cast<size_t>(decode_attention_bf16_splits(static_cast<int>(std::min<size_t>(capacity, INT32_MAX)), c.kv_heads));
}
}  // namespace

size_t GpuBf16Cache::bytes_needed(const ModelConfig& c, size_t capacity) {
  const size_t splits = max_splits(c, capacity);
  return 2 * static_cast<size_t>(c.layers) * capacity * kv_row(c) * sizeof(uint16_t) +
         splits * c.heads * (c.head_dim + 1) * sizeof(float) + c.kv_heads * sizeof(int);
}

GpuBf16Cache::GpuBf16Cache(const ModelConfig& c, size_t capacity) : GpuWholeSequenceCache(capacity), config_(c) {
  for (int l = 0; l < c.layers; ++l) {
    keys_.emplace_back(capacity * kv_row(c));
    values_.emplace_back(capacity * kv_row(c));
  }
  const size_t splits = max_splits(c, capacity);
  split_out_ = DeviceBuffer<float>(splits * c.heads * c.head_dim), split_lse_ = DeviceBuffer<float>(splits * c.heads);
  key_count_ = DeviceBuffer<int>(c.kv_heads);
}

int64_t GpuBf16Cache::decode_graph_epoch() const {
  if (static_cast<size_t>(length_) >= capacity_) return -1;
  return epoch_of(decode_attention_bf16_splits(length_ + 1, config_.kv_heads));
}

StorageStats GpuBf16Cache::storage() const {
  StorageStats st;
  st.tokens = static_cast<size_t>(config_.layers) * config_.kv_heads * length_;
  st.tail = 2 * static_cast<size_t>(config_.layers) * length_ * kv_row(config_) * sizeof(uint16_t);
  return st;
}

void GpuBf16Cache::attend(const GpuAttentionStep& step, cudaStream_t stream) {
  require_next_positions(step);
  const int n = step.tokens, first = length_, l = step.layer;
  if (n == 0) return;
  const size_t row = kv_row(config_), offset = static_cast<size_t>(first) * row;
  if (n == 1) {  // a decode step: keys split over blocks, fp32 query; the row and the key count from the device-held position
    const int d = step.head_dim;
    store_rows_bf16_gpu(step.keys, step.kv_heads, d, step.positions, INT32_MAX, keys_[l].data(), d, row, nullptr, stream);
    store_rows_bf16_gpu(step.values, step.kv_heads, d, step.positions, INT32_MAX, values_[l].data(), d, row, key_count_.data(),
                        stream);
    DecodeShape shape{first + 1, step.heads, step.kv_heads, d, step.scale};
    shape.device_keys = key_count_.data();
    decode_attention_bf16_gpu(shape, step.queries, keys_[l].data(), values_[l].data(),
                              decode_attention_bf16_splits(first + 1, step.kv_heads), split_out_.data(), split_lse_.data(),
                              step.out, step.lse, stream);
  } else {
    to_bf16_gpu(step.keys, n * row, keys_[l].data() + offset, stream);
    to_bf16_gpu(step.values, n * row, values_[l].data() + offset, stream);
    const PrefillShape shape{n, first + n, first, step.heads, step.kv_heads, step.head_dim, step.scale};
    prefill_attention_gpu(shape, step.queries_bf16, keys_[l].data(), values_[l].data(), step.out, step.lse, stream);
  }
}

}  // namespace ringkv
