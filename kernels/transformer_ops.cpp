#include "kernels/transformer_ops.hpp"

#include <cmath>
#include <vector>

#include "kernels/half.hpp"

namespace ringkv {

void rms_norm_cpu(const float* x, int n, int dim, const float* weight, float eps, float* out) {
#pragma omp parallel for schedule(static) if (n >= 16)
  for (int i = 0; i < n; ++i) {
    const float* xi = x + static_cast<size_t>(i) * dim;
    float sum = 0;
    for (int c = 0; c < dim; ++c) sum += xi[c] * xi[c];
    const float inv = 1.0f / std::sqrt(sum / static_cast<float>(dim) + eps);
    float* oi = out + static_cast<size_t>(i) * dim;
    for (int c = 0; c < dim; ++c) oi[c] = weight[c] * (xi[c] * inv);
  }
}

void rope_heads_cpu(float* x, int n, int heads, int head_dim, int first_position, const RopeTable& rope) {
  const int half = head_dim / 2;
#pragma omp parallel for schedule(static) if (n >= 16)
  for (int i = 0; i < n; ++i) {
    std::vector<float> c(half), s(half);
    for (int k = 0; k < half; ++k) {
      const double angle = static_cast<double>(first_position + i) * rope.inv_freq[k];
      c[k] = static_cast<float>(std::cos(angle));
      s[k] = static_cast<float>(std::sin(angle));
    }
    for (int h = 0; h < heads; ++h) {
      float* v = x + (static_cast<size_t>(i) * heads + h) * head_dim;
      for (int k = 0; k < half; ++k) {
        const float a = v[k], b = v[k + half];
        v[k] = a * c[k] - b * s[k];
        v[k + half] = b * c[k] + a * s[k];
      }
    }
  }
}

void silu_mul_cpu(float* gate, const float* up, size_t n) {
#pragma omp parallel for schedule(static) if (n >= (size_t{1} << 16))
  for (size_t i = 0; i < n; ++i) gate[i] = gate[i] / (1.0f + std::exp(-gate[i])) * up[i];
}

void embed_rows_cpu(const uint16_t* table, const int32_t* ids, int n, int dim, float* out) {
  for (int i = 0; i < n; ++i)
    for (int c = 0; c < dim; ++c) out[static_cast<size_t>(i) * dim + c] = bf16_to_float(table[static_cast<size_t>(ids[i]) * dim + c]);
}

void to_bf16_cpu(const float* x, size_t n, uint16_t* out) {
  for (size_t i = 0; i < n; ++i) out[i] = float_to_bf16(x[i]);
}

void from_bf16_cpu(const uint16_t* x, size_t n, float* out) {
  for (size_t i = 0; i < n; ++i) out[i] = bf16_to_float(x[i]);
}

void add_in_place_cpu(float* x, const float* y, size_t n) {
  for (size_t i = 0; i < n; ++i) x[i] += y[i];
}

}  // namespace ringkv
