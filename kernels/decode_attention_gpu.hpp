#pragma once
// Host entry points of the GPU kernels over INT-coded pages: decode attention reading the codes in
// place, page encoding, and page decoding to bf16 rows (device pointers throughout).
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
  // Optional bf16 tails (tokens not sealed yet; keys after RoPE): per stream a device pointer to
  // [tail_tokens[s]][128] rows, and the device array of counts (0 to 127). Null: no tails.
  const uint16_t* const* tail_keys = nullptr;
  const uint16_t* const* tail_values = nullptr;
  const int* tail_tokens = nullptr;
};

// Splits of the pages so that the grid fills the device a few times over.
int decode_attention_splits(int n_pages, int streams);
// The splits decode_attention_int_gpu is meant to run with: one warp each, as many over all streams
// as the device holds at once (one wave), at most one per page.
int decode_attention_int_splits(int n_pages, int streams, int bits);

// queries: post-RoPE [streams][n_queries][128] (n_queries: 1, 2, 4 or 8, the query heads of a
// KV head); workspace: split_out [states][streams][n_queries][128] and split_lse
// [states][streams][n_queries] with states = splits, plus one with tails; result: out
// [streams][n_queries][128], lse [streams][n_queries], the sealed pages and tails merged.
// Scores are scale * q.k, as partial_attention computes them on the CPU.
void decode_attention_int_gpu(const IntPagesGpu& pages, const float* queries, int n_queries, float scale, int splits,
                              float* split_out, float* split_lse, float* out, float* lse, cudaStream_t stream);

// Encodes full pages of 128 tokens x head_dim 128 with the INT codec (group 128), exactly as
// IntCodec::encode does: rows [n_pages][128][128] fp32 (16-byte aligned), page_bytes a device array
// of n_pages device pointers (4-byte aligned) to encoded_bytes(128) bytes each. keys: the key
// layout, else values.
void encode_int_pages_gpu(const float* rows, int n_pages, int bits, bool keys, uint8_t* const* page_bytes,
                          cudaStream_t stream);

// Decodes full pages (head_dim 128, group 128) into bf16 rows, as IntCodec::decode_page then bf16
// rounding: pages, a device array [n_pages][kv_heads] of device pointers (page k of KV head h at
// k * kv_heads + h), to rows [n_pages * 128][kv_heads][128], page k holding rows 128k to 128k + 127.
void decode_int_pages_gpu(const uint8_t* const* pages, int n_pages, int kv_heads, int bits, bool keys, uint16_t* rows,
                          cudaStream_t stream);

}  // namespace ringkv
