#pragma once
// A codec's learned table per layer, KV head and role on the GPU (NUQ levels, RVQ codebooks), with
// each layer's device array of its KV heads' table pointers, as the page kernels take them.
#include <functional>
#include <vector>

#include "kernels/cuda_check.hpp"
#include "runtime/model_config.hpp"

namespace ringkv {

class GpuStreamTables {
 public:
  // table(l, h, keys): the `floats` values of layer l, KV head h and a role.
  using Table = std::function<std::vector<float>(int l, int h, bool keys)>;
  GpuStreamTables(const ModelConfig& config, size_t floats, const Table& table);
  static size_t bytes_needed(const ModelConfig& config, size_t floats);
  // Layer l's device array [kv_heads] of device pointers to its tables of a role.
  const float* const* of(bool keys, int l) const;
  // Bytes of the tables of both roles.
  size_t bytes() const { return (values_[0].size() + values_[1].size()) * sizeof(float); }

 private:
  int kv_heads_;
  DeviceBuffer<float> values_[2];             // [layers][kv_heads][floats], keys then values
  DeviceBuffer<const float*> pointers_[2];   // [layers][kv_heads]
};

}  // namespace ringkv
