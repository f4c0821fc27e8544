#include "kernels/compiled_variants.hpp"
#include "kernels/cuda_check.hpp"
#include "kernels/decode_attention_gpu.hpp"
#include "kernels/decode_int_pages.cuh"

namespace ringkv {

void decode_int_pages_gpu(const uint8_t* const* pages, int n_pages, int kv_heads, int bits, bool keys, uint16_t* rows,
                          cudaStream_t stream) {
  if (n_pages == 0) return;
  const int blocks = n_pages * kv_heads;
  with_code_bits(bits, "decode_int_pages_gpu", [&](auto b) {
    constexpr int kBits = decltype(b)::value;
    if (keys)
      kernels::decode_int_pages_kernel<kBits, true><<<blocks, kernels::kIntPageDim, 0, stream>>>(pages, kv_heads, rows);
    else
      kernels::decode_int_pages_kernel<kBits, false><<<blocks, kernels::kIntPageDim, 0, stream>>>(pages, kv_heads, rows);
  });
  RINGKV_CHECK_CUDA(cudaGetLastError());
}

}  // namespace ringkv
