#pragma once
// Shared scalar-quantization helpers of the int and kvquant codecs.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>

#include "kernels/half.hpp"

namespace ringkv {

// fp16 storage of scale-like parameters, saturating instead of overflowing to infinity.
inline uint16_t store_fp16(float x) { return float_to_fp16(std::clamp(x, -65504.0f, 65504.0f)); }
inline void write_fp16(uint8_t* at, float x) {
  const uint16_t h = store_fp16(x);
  std::memcpy(at, &h, 2);
}
inline float read_fp16(const uint8_t* at) {
  uint16_t h;
  std::memcpy(&h, at, 2);
  return fp16_to_float(h);
}

// An asymmetric uniform grid [lo, lo + step * (levels - 1)] as stored (fp16-rounded), so encoding
// and decoding use exactly the same numbers.
struct UniformGrid {
  float lo = 0, step = 0;
  static UniformGrid fit(float min_value, float max_value, int levels) {
    UniformGrid g;
    g.lo = fp16_to_float(store_fp16(min_value));
    const float raw_step = levels > 1 ? (max_value - g.lo) / static_cast<float>(levels - 1) : 0.0f;
    g.step = fp16_to_float(store_fp16(std::max(raw_step, 0.0f)));
    return g;
  }
  uint32_t code(float x, int levels) const {
    if (step <= 0.0f) return 0;
    const float q = std::nearbyint((x - lo) / step);
    return static_cast<uint32_t>(std::clamp(q, 0.0f, static_cast<float>(levels - 1)));
  }
  float value(uint32_t code) const { return lo + step * static_cast<float>(code); }
};

}  // namespace ringkv
