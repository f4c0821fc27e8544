#include <algorithm>

#include "kernels/cuda_check.hpp"
#include "kernels/transformer_ops.cuh"
#include "kernels/transformer_ops_gpu.hpp"

namespace ringkv {

void rms_norm_gpu(const float* x, int n, int dim, const float* weight, float eps, uint16_t* out, cudaStream_t stream) {
  if (n == 0) return;
  kernels::rms_norm_kernel<<<n, kernels::kRowThreads, 0, stream>>>(x, dim, weight, eps, out);
  RINGKV_CHECK_CUDA(cudaGetLastError());
}

void rope_heads_gpu(float* x, int n, size_t row_stride, int heads, int head_dim, const int* positions, const float* inv_freq,
                    cudaStream_t stream) {
  if (n == 0) return;
  RINGKV_REQUIRE(head_dim % 2 == 0 && row_stride >= static_cast<size_t>(heads) * head_dim,
                 "rope_heads_gpu: head_dim must be even and rows must hold their heads");
  const int threads = std::min(256, std::max(32, heads * head_dim / 2));
  kernels::rope_heads_kernel<<<n, threads, 0, stream>>>(x, row_stride, heads, head_dim, positions, inv_freq);
  RINGKV_CHECK_CUDA(cudaGetLastError());
}

namespace {
// Blocks of 256 threads for an elementwise kernel over n elements (grid-stride beyond 4096 blocks).
int elementwise_blocks(size_t n) { return static_cast<int>(std::min<size_t>((n + 255) / 256, 4096)); }
}  // namespace

void silu_mul_gpu(float* gate, const float* up, size_t n, cudaStream_t stream) {
  if (n == 0) return;
  kernels::silu_mul_kernel<<<elementwise_blocks(n), 256, 0, stream>>>(gate, up, n);
  RINGKV_CHECK_CUDA(cudaGetLastError());
}

void embed_rows_gpu(const uint16_t* table, const int32_t* ids, int n, int dim, float* out, cudaStream_t stream) {
  if (n == 0) return;
  kernels::embed_rows_kernel<<<n, kernels::kRowThreads, 0, stream>>>(table, ids, dim, out);
  RINGKV_CHECK_CUDA(cudaGetLastError());
}

void to_bf16_gpu(const float* x, size_t n, uint16_t* out, cudaStream_t stream) {
  if (n == 0) return;
  kernels::to_bf16_kernel<<<elementwise_blocks(n), 256, 0, stream>>>(x, n, out);
  RINGKV_CHECK_CUDA(cudaGetLastError());
}

void from_bf16_gpu(const uint16_t* x, size_t n, float* out, cudaStream_t stream) {
  if (n == 0) return;
  kernels::from_bf16_kernel<<<elementwise_blocks(n), 256, 0, stream>>>(x, n, out);
  RINGKV_CHECK_CUDA(cudaGetLastError());
}

void store_rows_bf16_gpu(const float* rows, int heads, int head_dim, const int* position, int wrap, uint16_t* dst,
                         size_t head_stride, size_t row_stride, int* lengths, cudaStream_t stream) {
  RINGKV_REQUIRE(head_dim > 0 && head_dim <= 1024 && wrap > 0, "store_rows_bf16_gpu: head_dim 1 to 1024, wrap above 0");
  if (heads == 0) return;
  kernels::store_rows_bf16_kernel<<<heads, head_dim, 0, stream>>>(rows, head_dim, position, wrap, dst, head_stride, row_stride,
                                                                 lengths);
  RINGKV_CHECK_CUDA(cudaGetLastError());
}

}  // namespace ringkv
