#pragma once
// The elementwise and row-wise steps of a LLaMA layer (and the embedding lookup and bf16 rounding
// around its matrix products), in plain C++ (the CPU backend, and the
// oracle of their CUDA twins in transformer_ops.cuh).
#include <cstddef>
#include <cstdint>

#include "kernels/rope.hpp"

namespace ringkv {

// out[i] = x[i] / rms(x[i]) * weight for rows x: [n][dim], summed in fp32 as transformers does.
void rms_norm_cpu(const float* x, int n, int dim, const float* weight, float eps, float* out);
// Rotates every head of rows x: [n][heads][head_dim] to position first_position + i (angles in double).
void rope_heads_cpu(float* x, int n, int heads, int head_dim, int first_position, const RopeTable& rope);
// gate[i] = silu(gate[i]) * up[i], the SwiGLU product.
void silu_mul_cpu(float* gate, const float* up, size_t n);
// out[i] = table[ids[i]] for a bf16 table [vocab][dim]: the token embedding.
void embed_rows_cpu(const uint16_t* table, const int32_t* ids, int n, int dim, float* out);
// out[i] = x[i] rounded to bf16 (nearest even): the inputs of the bf16 matrix products.
void to_bf16_cpu(const float* x, size_t n, uint16_t* out);
// out[i] = x[i] as fp32 (exact).
void from_bf16_cpu(const uint16_t* x, size_t n, float* out);
// x[i] += y[i], the residual connection.
void add_in_place_cpu(float* x, const float* y, size_t n);

}  // namespace ringkv
