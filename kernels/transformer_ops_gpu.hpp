#pragma once
// Host entry points of the CUDA twins of kernels/transformer_ops.hpp (device pointers).
#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>

namespace ringkv {

// The norm rounded to bf16: every norm feeds a GEMM.
void rms_norm_gpu(const float* x, int n, int dim, const float* weight, float eps, uint16_t* out, cudaStream_t stream);
// x: n rows of `heads` heads, row_stride floats apart (rows may hold more than the heads, e.g. the
// stacked q, k, v projections); positions: device [n], row i's position; inv_freq: device
// [head_dim / 2], the RopeTable's frequencies.
void rope_heads_gpu(float* x, int n, size_t row_stride, int heads, int head_dim, const int* positions, const float* inv_freq,
                    cudaStream_t stream);
void silu_mul_gpu(float* gate, const float* up, size_t n, cudaStream_t stream);
// ids: device [n], each checked by the caller to lie inside the table.
void embed_rows_gpu(const uint16_t* table, const int32_t* ids, int n, int dim, float* out, cudaStream_t stream);
void to_bf16_gpu(const float* x, size_t n, uint16_t* out, cudaStream_t stream);
void from_bf16_gpu(const uint16_t* x, size_t n, float* out, cudaStream_t stream);
// Rounds rows [heads][head_dim] to bf16 into row (*position % wrap) of each head's rows in dst (head
// h's at dst + h * head_stride, rows row_stride apart); lengths (device [heads], or null) then hold
// that row + 1. The position is read on the device, so the launch is the same every decode step.
void store_rows_bf16_gpu(const float* rows, int heads, int head_dim, const int* position, int wrap, uint16_t* dst,
                         size_t head_stride, size_t row_stride, int* lengths, cudaStream_t stream);

}  // namespace ringkv
