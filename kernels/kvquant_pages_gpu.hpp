#pragma once
// Host entry points of the GPU kernels over KVQuant pages (kvstore/codec_kvquant.cpp's layout, head_dim
// 128, pages of 128 tokens, 1 to 4 bits; device pointers throughout): page encoding, page decoding to
// bf16 rows, and decode attention reading the pages in place.
#include <cuda_runtime.h>

#include <cstdint>

namespace ringkv {

// One spec for keys and values.
struct KVQuantShapeGpu {
  int bits = 3;
  double outliers = 0.0;  // fraction of each vector kept sparse
  int sink = 0;           // positions below it are stored in fp16
  bool pre_rope = true;   // keys stored before RoPE
};

// Pages of several streams (a stream: one layer and KV head of one sequence), page k of a stream
// holding positions 128k to 128k + 127. Page pointers 4-byte aligned.
struct KVQuantPagesGpu {
  const uint8_t* const* key_pages = nullptr;    // device array [streams][n_pages] of device pointers
  const uint8_t* const* value_pages = nullptr;  // device array [streams][n_pages]
  const float* const* key_levels = nullptr;     // device array [streams]: each stream's 2^bits key levels
  const float* const* value_levels = nullptr;   // device array [streams]
  const float* inv_freq = nullptr;              // device [64]: the RoPE frequencies pre-RoPE keys are turned by
  int streams = 1, n_pages = 0;
  KVQuantShapeGpu shape;
  // Optional bf16 tails, as in IntPagesGpu (keys after RoPE; 1, 2, 4 or 8 queries per KV head). Null: none.
  const uint16_t* const* tail_keys = nullptr;
  const uint16_t* const* tail_values = nullptr;
  const int* tail_tokens = nullptr;
};

// Refuses, naming the reason, a shape the kernels are not compiled for.
void require_kvquant_gpu(const KVQuantShapeGpu& shape);

// queries: post-RoPE [streams][n_queries][128]; splits: decode_attention_splits(n_pages, streams)
// or fewer; workspace and results as decode_attention_int_gpu's. Scores are scale * q.k with keys
// turned to their positions, as partial_attention computes them on the CPU.
void decode_attention_kvquant_gpu(const KVQuantPagesGpu& pages, const float* queries, int n_queries, float scale, int splits,
                                  float* split_out, float* split_lse, float* out, float* lse, cudaStream_t stream);

// Encodes pages as KVQuantCodec::encode does, from rows fp32 [n_pages][kv_heads][128][128] (keys after
// RoPE: turned back first where the spec stores them before it): page k of KV head h (block k *
// kv_heads + h) holds positions first_position + 128k on, with levels[h] (device array [kv_heads]
// of device pointers to 2^bits levels) into page_bytes[k * kv_heads + h].
void encode_kvquant_pages_gpu(const KVQuantShapeGpu& shape, bool keys, const float* rows, int n_pages, int kv_heads,
                              int first_position, const float* const* levels, const float* inv_freq,
                              uint8_t* const* page_bytes, cudaStream_t stream);

// Decodes pages (device array [n_pages][kv_heads], positions as above) into bf16 rows
// [n_pages * 128][kv_heads][128] as KVQuantCodec::decode_rows gives them, keys turned to their
// positions: the rows prefill attends to.
void decode_kvquant_pages_gpu(const KVQuantShapeGpu& shape, bool keys, const uint8_t* const* pages, int n_pages, int kv_heads,
                              int first_position, const float* const* levels, const float* inv_freq, uint16_t* rows,
                              cudaStream_t stream);

}  // namespace ringkv
