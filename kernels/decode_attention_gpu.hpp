#pragma once
// Host entry points of the GPU decode attention over compressed pages (device pointers).
#include <cuda_runtime.h>

#include <cstdint>

namespace ringkv {

// Pages of several streams (a stream: one layer and KV head of one sequence), all full pages of
// 128 tokens, encoded by kvstore's IntCodec with group=128 (one key scale per channel and page,
// one value scale per token), head_dim 128. Page pointers must be 16-byte aligned.
struct IntPagesGpu {
  const uint8_t* const* key_pages = nullptr;    // device array [streams][n_pages] of device pointers
  const uint8_t* const* value_pages = nullptr;  // device array [streams][n_pages]
  int streams = 1;
  int n_pages = 0;
  int bits = 2;
};

// Splits of the pages so that the grid fills the device a few times over.
int decode_attention_splits(int n_pages, int streams);

// queries: post-RoPE [streams][n_queries][128] (n_queries: 1, 2, 4 or 8, the query heads of a
// KV head); workspace: split_out [splits][streams][n_queries][128] and split_lse
// [splits][streams][n_queries]; result: out [streams][n_queries][128], lse [streams][n_queries].
// Scores are scale * q.k, as partial_attention computes them on the CPU.
void decode_attention_int_gpu(const IntPagesGpu& pages, const float* queries, int n_queries, float scale, int splits,
                              float* split_out, float* split_lse, float* out, float* lse, cudaStream_t stream);

}  // namespace ringkv
