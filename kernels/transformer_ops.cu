#include <algorithm>

#include "kernels/cuda_check.hpp"
#include "kernels/transformer_ops.cuh"
#include "kernels/transformer_ops_gpu.hpp"

namespace ringkv {

void rms_norm_gpu(const float* x, int n, int dim, const float* weight, float eps, float* out, cudaStream_t stream) {
  if (n == 0) return;
  kernels::rms_norm_kernel<<<n, kernels::kRowThreads, 0, stream>>>(x, dim, weight, eps, out);
  RINGKV_CHECK_CUDA(cudaGetLastError());
}

void rope_heads_gpu(float* x, int n, int heads, int head_dim, int first_position, const float* inv_freq,
                    cudaStream_t stream) {
  if (n == 0) return;
  RINGKV_REQUIRE(head_dim % 2 == 0, "rope_heads_gpu: head_dim must be even");
  const int threads = std::min(256, std::max(32, heads * head_dim / 2));
  kernels::rope_heads_kernel<<<n, threads, 0, stream>>>(x, heads, head_dim, first_position, inv_freq);
  RINGKV_CHECK_CUDA(cudaGetLastError());
}

void silu_mul_gpu(float* gate, const float* up, size_t n, cudaStream_t stream) {
  if (n == 0) return;
  const int blocks = static_cast<int>(std::min<size_t>((n + 255) / 256, 4096));
  kernels::silu_mul_kernel<<<blocks, 256, 0, stream>>>(gate, up, n);
  RINGKV_CHECK_CUDA(cudaGetLastError());
}

}  // namespace ringkv
