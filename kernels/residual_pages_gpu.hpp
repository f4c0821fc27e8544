#pragma once
// Host entry points of the GPU kernels over RVQ pages (kvstore/codec_residual.cpp's layout, head_dim
// 128, pages of 128 tokens; device pointers throughout): page encoding, page decoding to bf16 rows,
// and decode attention reading the pages in place.
#include <cuda_runtime.h>

#include <cstdint>

#include "kernels/tiled_pages_gpu.hpp"

namespace ringkv {

// One spec for keys and values (keys in strided channel groups, values in contiguous ones).
struct ResidualShapeGpu {
  int depth = 8, codes = 256, group = 8;
  bool pre_rope = true;  // keys stored before RoPE
};

// Refuses, naming the reason, a shape the kernels are not compiled for: groups of 2, 4, 8 or 16
// channels, at most 256 codes per codebook, a codebook stack of at most 16384 entries x channels
// (two of them, in fp16, in a block's shared memory) and at most 256 codes per token.
void require_residual_gpu(const ResidualShapeGpu& shape);

// The pages of several streams and each stream's codebooks.
struct ResidualPagesGpu {
  TiledPages pages;
  const float* const* key_codebooks = nullptr;    // device array [streams]: each stream's [depth][codes][group] fp32
  const float* const* value_codebooks = nullptr;  // device array [streams]
  ResidualShapeGpu shape;
};

// As decode_attention_kvquant_gpu, over RVQ pages (codebook entries rounded to fp16 in shared memory).
void decode_attention_residual_gpu(const ResidualPagesGpu& pages, const float* queries, int n_queries, float scale, int splits,
                                   float* split_out, float* split_lse, float* out, float* lse, cudaStream_t stream);

// Encodes pages as ResidualCodec::encode does (per token its fp16 standard deviation, then per
// channel group and codebook the nearest entry to the residual), from rows fp32
// [n_pages][kv_heads][128][128] (keys after RoPE: turned back first where the spec stores them before
// it): page k of KV head h (block k * kv_heads + h) holds positions first_position + 128k on, with
// codebooks[h] (device array [kv_heads] of device pointers to [depth][codes][group] fp32) into
// page_bytes[k * kv_heads + h].
void encode_residual_pages_gpu(const ResidualShapeGpu& shape, bool keys, const float* rows, int n_pages, int kv_heads,
                               int first_position, const float* const* codebooks, const float* inv_freq,
                               uint8_t* const* page_bytes, cudaStream_t stream);

// Decodes pages (device array [n_pages][kv_heads], positions as above) into bf16 rows
// [n_pages * 128][kv_heads][128], keys turned to their positions: the rows prefill attends to.
void decode_residual_pages_gpu(const ResidualShapeGpu& shape, bool keys, const uint8_t* const* pages, int n_pages, int kv_heads,
                               int first_position, const float* const* codebooks, const float* inv_freq, uint16_t* rows,
                               cudaStream_t stream);

}  // namespace ringkv
