#include "kernels/compiled_variants.hpp"
#include "kernels/cuda_check.hpp"
#include "kernels/decode_attention_gpu.hpp"
#include "kernels/encode_int.cuh"

namespace ringkv {

void encode_int_pages_gpu(const float* rows, int n_pages, int bits, bool keys, uint8_t* const* page_bytes,
                          cudaStream_t stream) {
  if (n_pages == 0) return;
  with_code_bits(bits, "encode_int_pages_gpu", [&](auto b) {
    constexpr int kBits = decltype(b)::value;
    if (keys)
      kernels::encode_int_kernel<kBits, true><<<n_pages, kernels::kEncodeTokens, 0, stream>>>(rows, page_bytes);
    else
      kernels::encode_int_kernel<kBits, false><<<n_pages, kernels::kEncodeTokens, 0, stream>>>(rows, page_bytes);
  });
  RINGKV_CHECK_CUDA(cudaGetLastError());
}

}  // namespace ringkv
