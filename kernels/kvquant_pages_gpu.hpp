#pragma once
// Host entry points of the GPU kernels over KVQuant pages (kvstore/codec_kvquant.cpp's layout, head_dim
// 128, pages of 128 tokens, 1 to 4 bits; device pointers throughout): page encoding, page decoding to
// bf16 rows, and decode attention reading the pages in place.
#include <cuda_runtime.h>

#include <cstdint>

#include "kernels/tiled_pages_gpu.hpp"

namespace ringkv {

// One spec for keys and values.
struct KVQuantShapeGpu {
  int bits = 3;
  double outliers = 0.0;  // fraction of each vector kept sparse
  int sink = 0;           // positions below it are stored in fp16
  bool pre_rope = true;   // keys stored before RoPE
  bool even_levels = false;  // levels evenly spaced (nuq=0): at 1, 2 and 4 bits, decode attention reads the codes as integers
};

// The pages of several streams and each stream's levels.
struct KVQuantPagesGpu {
  TiledPages pages;
  const float* const* key_levels = nullptr;    // device array [streams]: each stream's 2^bits key levels
  const float* const* value_levels = nullptr;  // device array [streams]
  KVQuantShapeGpu shape;
};

// Refuses, naming the reason, a shape the kernels are not compiled for.
void require_kvquant_gpu(const KVQuantShapeGpu& shape);

// The splits decode_attention_kvquant_gpu takes over n_pages pages of each of `streams` streams:
// one warp each, filling the device once (and one more for the pages that hold sink rows).
int decode_attention_kvquant_splits(int n_pages, int streams, const KVQuantShapeGpu& shape);

// queries: post-RoPE [streams][n_queries][128]; splits: decode_attention_kvquant_splits(n_pages,
// streams, shape) or fewer; pages 16-byte aligned; workspace and results as decode_attention_int_gpu's. Scores are scale * q.k with keys
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
