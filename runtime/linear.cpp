#include "runtime/linear.hpp"

#include <algorithm>

#include "kernels/error.hpp"

namespace ringkv {

namespace {
constexpr int64_t kTileRows = 16;  // output features converted and applied together
constexpr int64_t kInputRows = 4;  // input rows sharing each load of the weight tile

// y[i][0:kTileRows] = x[i] . tile for Rows input rows; the tile is transposed ([cols][kTileRows])
// so the inner loop is a vector multiply-add across output features, accumulated in registers.
template <int64_t Rows>
void tile_product(const float* tile_t, const float* x, int64_t cols, float (*acc)[kTileRows]) {
  for (int64_t i = 0; i < Rows; ++i)
    for (int64_t r = 0; r < kTileRows; ++r) acc[i][r] = 0;
  for (int64_t k = 0; k < cols; ++k) {
    const float* wk = tile_t + k * kTileRows;
    for (int64_t i = 0; i < Rows; ++i) {
      const float xv = x[i * cols + k];
#pragma omp simd
      for (int64_t r = 0; r < kTileRows; ++r) acc[i][r] += xv * wk[r];
    }
  }
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
  // Waking threads costs more than a small product (a decode step's projections of a small model).
  const bool parallel = n * w.rows * w.cols >= (int64_t{1} << 20);
#pragma omp parallel if (parallel)
  {
    std::vector<float> rows_f(static_cast<size_t>(kTileRows * w.cols)), tile_t(rows_f.size());
#pragma omp for schedule(static)
    for (int64_t t = 0; t < tiles; ++t) {
      const int64_t r0 = t * kTileRows, rows = std::min(kTileRows, w.rows - r0);
      convert_to_float(w.dtype, w.data + static_cast<size_t>(r0 * w.cols) * dtype_size(w.dtype),
                       static_cast<size_t>(rows * w.cols), rows_f.data());
      for (int64_t k = 0; k < w.cols; ++k)
        for (int64_t r = 0; r < kTileRows; ++r) tile_t[k * kTileRows + r] = r < rows ? rows_f[r * w.cols + k] : 0.f;
      float acc[kInputRows][kTileRows];
      for (int64_t i0 = 0; i0 < n; i0 += kInputRows) {
        const int64_t inputs = std::min(kInputRows, n - i0);
        const float* xi = x + i0 * w.cols;
        switch (inputs) {
          case 4: tile_product<4>(tile_t.data(), xi, w.cols, acc); break;
          case 3: tile_product<3>(tile_t.data(), xi, w.cols, acc); break;
          case 2: tile_product<2>(tile_t.data(), xi, w.cols, acc); break;
          default: tile_product<1>(tile_t.data(), xi, w.cols, acc); break;
        }
        for (int64_t i = 0; i < inputs; ++i)
          for (int64_t r = 0; r < rows; ++r) y[(i0 + i) * w.rows + r0 + r] = acc[i][r] + (bias ? bias[r0 + r] : 0.f);
      }
    }
  }
}

}  // namespace ringkv
