#pragma once
// Decoding of full 128-token INT pages (head_dim 128, group 128) on the GPU into bf16 rows, value
// for value what IntCodec::decode_page gives (lo + step * code, rounded once each, no fused
// multiply-add) rounded to bf16: prefill attends to sealed pages in this form.
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstdint>

namespace ringkv::kernels {

constexpr int kIntPageDim = 128;  // tokens per page = head_dim = threads per block

// grid: n_pages * kv_heads pages, page k of KV head h at k * kv_heads + h; block: kIntPageDim.
// rows: [tokens][kv_heads][128], page k holding tokens 128k to 128k + 127.
template <int BITS, bool KEYS>
__global__ void __launch_bounds__(kIntPageDim) decode_int_pages_kernel(const uint8_t* const* pages, int kv_heads,
                                                                       uint16_t* __restrict__ rows) {
  constexpr int kDim = kIntPageDim;
  __shared__ uint16_t tile[kDim][kDim + 2];  // [token][channel]; +2: a column's elements in different banks
  const int page = blockIdx.x, i = threadIdx.x;
  const uint8_t* bytes = pages[page];
  const __half2* params = reinterpret_cast<const __half2*>(bytes);  // (lo, step) per channel (keys) or token (values)
  const uint32_t* codes = reinterpret_cast<const uint32_t*>(bytes + 4 * kDim);
  // Thread i decodes run i: token i's codes over the channels (keys) or channel i's over the tokens
  // (values); element j of either has the grid of index j.
  for (int j = 0; j < kDim; ++j) {
    const int bit = (i * kDim + j) * BITS, word = bit >> 5, shift = bit & 31;
    uint32_t code = codes[word] >> shift;
    if (shift + BITS > 32) code |= codes[word + 1] << (32 - shift);
    code &= (1u << BITS) - 1u;
    const float2 grid = __half22float2(params[j]);
    const float x = __fadd_rn(grid.x, __fmul_rn(grid.y, static_cast<float>(code)));
    const uint16_t b = __bfloat16_as_ushort(__float2bfloat16_rn(x));
    if (KEYS)
      tile[i][j] = b;
    else
      tile[j][i] = b;
  }
  __syncthreads();
  const int k = page / kv_heads, h = page % kv_heads;
  uint16_t* out = rows + (static_cast<size_t>(k) * kDim * kv_heads + h) * kDim + i;
  for (int t = 0; t < kDim; ++t) out[static_cast<size_t>(t) * kv_heads * kDim] = tile[t][i];  // coalesced per token
}

}  // namespace ringkv::kernels
