#pragma once
// Dense layers of the CPU backend: y = x W^T (+ b) with W read in its stored dtype (bf16, fp16 or
// fp32, memory-mapped) and converted a tile at a time, so weights are never copied whole.
#include <cstdint>
#include <string>
#include <vector>

#include "runtime/safetensors.hpp"

namespace ringkv {

// A [rows][cols] weight, row-major: rows are output features.
struct WeightMatrix {
  DType dtype = DType::F32;
  const uint8_t* data = nullptr;
  int64_t rows = 0, cols = 0;

  // Checks the tensor's shape against [rows][cols], naming it.
  static WeightMatrix from(const TensorView& tensor, int64_t rows, int64_t cols);
  // Row r converted to fp32 (embedding lookups).
  void row(int64_t r, float* out) const;
};

// y[n][w.rows] = x[n][w.cols] . w^T + bias (bias may be null). Threads split the output features;
// each converts its weight tile once and applies it to all n rows.
void linear(const float* x, int64_t n, const WeightMatrix& w, const float* bias, float* y);

}  // namespace ringkv
