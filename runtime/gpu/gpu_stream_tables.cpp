#include "runtime/gpu/gpu_stream_tables.hpp"

#include "kernels/error.hpp"

namespace ringkv {

size_t GpuStreamTables::bytes_needed(const ModelConfig& c, size_t floats) {
  return 2 * static_cast<size_t>(c.layers) * c.kv_heads * (floats * sizeof(float) + sizeof(void*));
}

GpuStreamTables::GpuStreamTables(const ModelConfig& c, size_t floats, const Table& table) : kv_heads_(c.kv_heads) {
  const size_t streams = static_cast<size_t>(c.layers) * c.kv_heads;
  for (int role = 0; role < 2; ++role) {
    std::vector<float> host;
    host.reserve(streams * floats);
    for (int l = 0; l < c.layers; ++l)
      for (int h = 0; h < c.kv_heads; ++h) {
        const std::vector<float> t = table(l, h, role == 0);
        RINGKV_REQUIRE(t.size() == floats, "a codec table of " + std::to_string(t.size()) + " values where " +
                                               std::to_string(floats) + " were expected");
        host.insert(host.end(), t.begin(), t.end());
      }
    values_[role] = DeviceBuffer<float>(host.size());
    values_[role].upload(host.data());
    std::vector<const float*> pointers(streams);
    for (size_t i = 0; i < streams; ++i) pointers[i] = values_[role].data() + i * floats;
    pointers_[role] = DeviceBuffer<const float*>(streams);
    pointers_[role].upload(pointers.data());
  }
}

const float* const* GpuStreamTables::of(bool keys, int l) const {
  return pointers_[keys ? 0 : 1].data() + static_cast<size_t>(l) * kv_heads_;
}

}  // namespace ringkv
