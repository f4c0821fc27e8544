#pragma once
// Host entry point of the GPU decode attention over Coupled-Quantization pages (device pointers).
#include <cuda_runtime.h>

#include <cstdint>

namespace ringkv {

// Full pages of several streams (a stream: one layer and KV head of one sequence) encoded by
// kvstore's CoupledCodec, with each stream's learned centroids (fp32 [groups][2^bits][channels]).
// Pages start 4-byte aligned and their codes fill whole 32-bit words.
struct CoupledPagesGpu {
  const uint8_t* const* key_pages = nullptr;      // device array [streams][n_pages] of device pointers
  const uint8_t* const* value_pages = nullptr;    // device array [streams][n_pages]
  const float* const* key_centroids = nullptr;    // device array [streams] of device pointers
  const float* const* value_centroids = nullptr;  // device array [streams]
  int streams = 1, n_pages = 0, page_tokens = 128, head_dim = 128;
  int key_channels = 8, key_bits = 8, value_channels = 8, value_bits = 8;
  // Optional bf16 tails, as in IntPagesGpu (head_dim 128; 1, 2, 4 or 8 queries per KV head). Null: none.
  const uint16_t* const* tail_keys = nullptr;
  const uint16_t* const* tail_values = nullptr;
  const int* tail_tokens = nullptr;
};

// Refuses, naming the reason, a shape the kernel cannot take on this GPU (groups, code widths and
// page sizes it does not handle, lookup tables that do not fit in a block's shared memory).
void require_decode_attention_coupled(const CoupledPagesGpu& pages);

// Splits of the pages: about two blocks per multiprocessor, each split long enough (16 pages or
// more) that building its lookup tables stays small beside reading its keys.
int decode_attention_coupled_splits(const CoupledPagesGpu& pages);

// queries: post-RoPE [streams][n_queries][head_dim]; workspace: split_out
// [states][streams][n_queries][head_dim], split_lse [states][streams][n_queries] with states =
// splits, plus one with tails; result: out
// [streams][n_queries][head_dim], lse [streams][n_queries]. Scores are scale * q.k, as
// partial_attention computes them on the CPU.
void decode_attention_coupled_gpu(const CoupledPagesGpu& pages, const float* queries, int n_queries, float scale, int splits,
                                  float* split_out, float* split_lse, float* out, float* lse, cudaStream_t stream);

}  // namespace ringkv
