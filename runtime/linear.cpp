#include "runtime/linear.hpp"

#include <algorithm>

#include "kernels/error.hpp"

namespace ringkv {

namespace {
constexpr int64_t kTileRows = 8;  // output features converted and applied together

float dot(const float* a, const float* b, int64_t n) {
  float acc = 0;
#pragma omp simd reduction(+ : acc)
  for (int64_t i = 0; i < n; ++i) acc += a[i] * b[i];
  return acc;
}
}  // namespace

WeightMatrix WeightMatrix::from(const TensorView& tensor, int64_t rows, int64_t cols) {
  RINGKV_REQUIRE(tensor.shape == (std::vector<int64_t>{rows, cols}),
                 "tensor " + tensor.name + " has shape " + shape_text(tensor.shape) + ", expected [" +
                     std::to_string(rows) + ", " + std::to_string(cols) + "]");
  return {tensor.dtype, tensor.data, rows, cols};
}

void WeightMatrix::row(int64_t r, float* out) const {
  convert_to_float(dtype, data + static_cast<size_t>(r * cols) * dtype_size(dtype), static_cast<size_t>(cols), out);
}

void linear(const float* x, int64_t n, const WeightMatrix& w, const float* bias, float* y) {
  const int64_t tiles = (w.rows + kTileRows - 1) / kTileRows;
#pragma omp parallel
  {
    std::vector<float> tile(static_cast<size_t>(kTileRows * w.cols));
#pragma omp for schedule(static)
    for (int64_t t = 0; t < tiles; ++t) {
      const int64_t r0 = t * kTileRows, rows = std::min(kTileRows, w.rows - r0);
      convert_to_float(w.dtype, w.data + static_cast<size_t>(r0 * w.cols) * dtype_size(w.dtype), static_cast<size_t>(rows * w.cols),
                       tile.data());
      for (int64_t i = 0; i < n; ++i) {
        const float* xi = x + i * w.cols;
        float* yi = y + i * w.rows + r0;
        for (int64_t r = 0; r < rows; ++r) yi[r] = dot(tile.data() + r * w.cols, xi, w.cols) + (bias ? bias[r0 + r] : 0.f);
      }
    }
  }
}

}  // namespace ringkv
