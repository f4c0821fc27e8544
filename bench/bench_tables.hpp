#pragma once
// Stand-ins for learned tables in the GPU benchmarks (their speed does not depend on the values):
// uniform random values as a codec's table of layer 0, KV head 0 for both roles, on the host (for
// the CPU codec that encodes the pages) and on the device, and device arrays of one table pointer
// repeated for every stream or page.
#include <memory>
#include <string>
#include <vector>

#include "bench/gpu_timing.hpp"
#include "kernels/cuda_check.hpp"
#include "kvstore/calibration.hpp"
#include "kvstore/codec.hpp"

namespace ringkv {

struct BenchTable {
  Calibration calibration;
  DeviceBuffer<float> device;
};

inline BenchTable random_table(const CodecSpec& spec, const std::string& kind, const std::vector<int64_t>& shape, uint64_t seed) {
  size_t n = 1;
  for (int64_t d : shape) n *= static_cast<size_t>(d);
  std::vector<float> values(n);
  for (float& x : values) x = next_uniform(seed) - 0.5f;
  BenchTable t{Calibration{}, DeviceBuffer<float>(n)};
  for (Role role : {Role::Key, Role::Value}) t.calibration.put(table_name(spec, 0, 0, role, kind), {shape, values});
  t.device.upload(values.data());
  return t;
}

// A device array of `count` copies of `pointer` (shared, so that a timed step can keep it alive).
inline std::shared_ptr<DeviceBuffer<const float*>> repeated_pointer(const float* pointer, size_t count) {
  auto d = std::make_shared<DeviceBuffer<const float*>>(count);
  const std::vector<const float*> each(count, pointer);
  d->upload(each.data());
  return d;
}

}  // namespace ringkv
