#pragma once
// Host entry points of the GPU encoding and decoding of full Coupled-Quantization pages (device
// pointers; the page layout of kvstore/codec_coupled.cpp, pages 4-byte aligned, each page's codes
// filling whole 32-bit words).
#include <cuda_runtime.h>

#include <cstdint>

namespace ringkv {

struct CoupledShapeGpu {
  int page_tokens = 128, head_dim = 128, channels = 8, bits = 8;
};

// Encodes n_pages pages as CoupledCodec::encode does: rows fp32 [n_pages][page_tokens][head_dim];
// centroids and page_bytes: device arrays of n_pages device pointers (each page's centroids
// [groups][2^bits][channels], and its encoded_bytes(page_tokens) bytes).
void encode_coupled_pages_gpu(const CoupledShapeGpu& shape, const float* rows, int n_pages, const float* const* centroids,
                              uint8_t* const* page_bytes, cudaStream_t stream);

// Decodes full pages into bf16 rows, as CoupledCodec::decode_rows then bf16 rounding: pages, a
// device array [n_pages][kv_heads] of device pointers (page k of KV head h at k * kv_heads + h);
// centroids, one device pointer per KV head; rows [n_pages * page_tokens][kv_heads][head_dim].
void decode_coupled_pages_gpu(const CoupledShapeGpu& shape, const uint8_t* const* pages, int n_pages, int kv_heads,
                              const float* const* centroids, uint16_t* rows, cudaStream_t stream);

}  // namespace ringkv
