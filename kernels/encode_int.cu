#include <string>

#include "kernels/cuda_check.hpp"
#include "kernels/decode_attention_gpu.hpp"
#include "kernels/encode_int.cuh"

namespace ringkv {

namespace {
template <int BITS>
void launch(const float* rows, int n_pages, bool keys, uint8_t* const* page_bytes, cudaStream_t stream) {
  if (keys)
    kernels::encode_int_kernel<BITS, true><<<n_pages, kernels::kEncodeTokens, 0, stream>>>(rows, page_bytes);
  else
    kernels::encode_int_kernel<BITS, false><<<n_pages, kernels::kEncodeTokens, 0, stream>>>(rows, page_bytes);
}
}  // namespace

void encode_int_pages_gpu(const float* rows, int n_pages, int bits, bool keys, uint8_t* const* page_bytes,
                          cudaStream_t stream) {
  if (n_pages == 0) return;
  switch (bits) {
    case 1: launch<1>(rows, n_pages, keys, page_bytes, stream); break;
    case 2: launch<2>(rows, n_pages, keys, page_bytes, stream); break;
    case 3: launch<3>(rows, n_pages, keys, page_bytes, stream); break;
    case 4: launch<4>(rows, n_pages, keys, page_bytes, stream); break;
    default: fail("encode_int_pages_gpu: " + std::to_string(bits) + "-bit codes are not compiled (1 to 4)", __FILE__, __LINE__);
  }
  RINGKV_CHECK_CUDA(cudaGetLastError());
}

}  // namespace ringkv
