#include "runtime/gpu/cublas_linear.hpp"

#include <string>

namespace ringkv {

namespace {
void check(cublasStatus_t status, const char* call) {
  if (status != CUBLAS_STATUS_SUCCESS)
    throw Error(std::string(call) + " failed: " + cublasGetStatusName(status) + " (" + cublasGetStatusString(status) + ")");
}
}  // namespace

CublasHandle::CublasHandle(cudaStream_t stream) : workspace_(kWorkspaceBytes) {
  check(cublasCreate(&handle_), "cublasCreate");
  check(cublasSetStream(handle_, stream), "cublasSetStream");
  check(cublasSetWorkspace(handle_, workspace_.data(), workspace_.size()), "cublasSetWorkspace");
}

CublasHandle::~CublasHandle() { cublasDestroy(handle_); }

void CublasHandle::linear(const uint16_t* x, int64_t n, const DeviceMatrix& w, float* y, bool accumulate) const {
  if (n == 0) return;
  // Column-major view: y^T [w.rows][n] = W [w.rows][w.cols] . x^T [w.cols][n], where the row-major
  // W reads as its transpose.
  const float one = 1.0f, keep = accumulate ? 1.0f : 0.0f;
  check(cublasGemmEx(handle_, CUBLAS_OP_T, CUBLAS_OP_N, static_cast<int>(w.rows), static_cast<int>(n),
                     static_cast<int>(w.cols), &one, w.data.data(), CUDA_R_16BF, static_cast<int>(w.cols), x, CUDA_R_16BF,
                     static_cast<int>(w.cols), &keep, y, CUDA_R_32F, static_cast<int>(w.rows), CUBLAS_COMPUTE_32F,
                     CUBLAS_GEMM_DEFAULT),
        "cublasGemmEx");
}

}  // namespace ringkv
