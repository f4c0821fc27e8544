#include "kernels/rope.hpp"

#include <cmath>

#include "kernels/error.hpp"

namespace ringkv {

RopeTable RopeTable::plain(int head_dim, double theta) {
  RINGKV_REQUIRE(head_dim > 0 && head_dim % 2 == 0, "RoPE needs an even head_dim, got " + std::to_string(head_dim));
  RopeTable t;
  t.head_dim = head_dim;
  t.inv_freq.resize(head_dim / 2);
  for (int i = 0; i < head_dim / 2; ++i)
    t.inv_freq[i] = static_cast<float>(1.0 / std::pow(theta, (2.0 * i) / head_dim));
  return t;
}

namespace {
void rotate(float* vec, double position, const RopeTable& rope) {
  const int half = rope.head_dim / 2;
  for (int i = 0; i < half; ++i) {
    // Angles in double: positions reach 10^7, where float phase loses all precision.
    const double angle = position * static_cast<double>(rope.inv_freq[i]);
    const float c = static_cast<float>(std::cos(angle)), s = static_cast<float>(std::sin(angle));
    const float a = vec[i], b = vec[i + half];
    vec[i] = a * c - b * s;
    vec[i + half] = b * c + a * s;
  }
}
}  // namespace

void apply_rope(float* vec, int position, const RopeTable& rope) { rotate(vec, position, rope); }
void apply_inverse_rope(float* vec, int position, const RopeTable& rope) { rotate(vec, -static_cast<double>(position), rope); }

void apply_rope_rows(float* rows, int n_rows, int first_position, const RopeTable& rope) {
  // Consecutive positions: start from the exact angle, then step by one rotation per row (angle
  // addition in double), instead of a sine and cosine per channel pair and row.
  const int half = rope.head_dim / 2;
  const size_t stride = static_cast<size_t>(rope.head_dim);
  for (int i = 0; i < half; ++i) {
    const double f = rope.inv_freq[i];
    const double step_c = std::cos(f), step_s = std::sin(f);
    double c = std::cos(first_position * f), s = std::sin(first_position * f);
    for (int r = 0; r < n_rows; ++r) {
      float* v = rows + r * stride;
      const float fc = static_cast<float>(c), fs = static_cast<float>(s);
      const float a = v[i], b = v[i + half];
      v[i] = a * fc - b * fs;
      v[i + half] = b * fc + a * fs;
      const double next_c = c * step_c - s * step_s;
      s = s * step_c + c * step_s;
      c = next_c;
    }
  }
}

}  // namespace ringkv
