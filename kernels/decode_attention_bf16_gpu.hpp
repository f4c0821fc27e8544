#pragma once
// Host entry point of the GPU decode attention over a bf16 KV cache (device pointers): one query
// per head at the position after the last key, as prefill_attention_cpu computes it for a chunk of
// one query at q_offset = n_keys - 1 (its CPU twin).
#include <cuda_runtime.h>

#include <cstdint>

namespace ringkv {

struct DecodeShape {
  int n_keys = 0;
  int heads = 1, kv_heads = 1, head_dim = 128;  // heads / kv_heads: 1, 2, 4 or 8; head_dim 64 or 128
  float scale = 1;
  // Where set, the key count is read here on the device when the kernel runs (n_keys then only
  // checks the call), so a CUDA graph replays one launch for steps of different lengths.
  const int* device_keys = nullptr;
};

// Splits of the keys so that the grid fills the device a few times over.
int decode_attention_bf16_splits(int n_keys, int kv_heads);

// queries: fp32 [heads][head_dim]; keys, values: bf16 [n_keys][kv_heads][head_dim] (16-byte
// aligned); workspace: split_out [splits][heads][head_dim], split_lse [splits][heads]; result: out
// [heads][head_dim], lse [heads] (natural log; -inf with no keys).
void decode_attention_bf16_gpu(const DecodeShape& shape, const float* queries, const uint16_t* keys, const uint16_t* values,
                               int splits, float* split_out, float* split_lse, float* out, float* lse, cudaStream_t stream);

}  // namespace ringkv
