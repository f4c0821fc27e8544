#pragma once
// Dense layers of the GPU backend: y = x W^T with bf16 x and W and fp32 y, on cuBLAS (fp32
// accumulation), so every matrix product of the forward pass runs on the tensor cores.
#include <cublas_v2.h>

#include <cstdint>

#include "kernels/cuda_check.hpp"

namespace ringkv {

// A [rows][cols] bf16 weight on the device, row-major: rows are output features.
struct DeviceMatrix {
  DeviceBuffer<uint16_t> data;
  int64_t rows = 0, cols = 0;
};

class CublasHandle {
 public:
  // Its own workspace, so the GEMMs may be captured into a CUDA graph (nothing allocated while
  // capturing).
  static constexpr size_t kWorkspaceBytes = size_t{32} << 20;

  explicit CublasHandle(cudaStream_t stream);
  ~CublasHandle();
  CublasHandle(const CublasHandle&) = delete;
  CublasHandle& operator=(const CublasHandle&) = delete;

  // y[n][w.rows] = x[n][w.cols] . w^T, or y += x . w^T when accumulate (the residual stream takes
  // its sums in the GEMM's epilogue) (device pointers).
  void linear(const uint16_t* x, int64_t n, const DeviceMatrix& w, float* y, bool accumulate = false) const;

 private:
  cublasHandle_t handle_ = nullptr;
  DeviceBuffer<uint8_t> workspace_;
};

}  // namespace ringkv
