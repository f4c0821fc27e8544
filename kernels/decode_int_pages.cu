#include "kernels/cuda_check.hpp"
#include "kernels/decode_attention_gpu.hpp"
#include "kernels/decode_int_pages.cuh"

namespace ringkv {

namespace {
template <int BITS>
void launch(const uint8_t* const* pages, int n_pages, int kv_heads, bool keys, uint16_t* rows, cudaStream_t stream) {
  const int blocks = n_pages * kv_heads;
  if (keys)
    kernels::decode_int_pages_kernel<BITS, true><<<blocks, kernels::kIntPageDim, 0, stream>>>(pages, kv_heads, rows);
  else
    kernels::decode_int_pages_kernel<BITS, false><<<blocks, kernels::kIntPageDim, 0, stream>>>(pages, kv_heads, rows);
}
}  // namespace

void decode_int_pages_gpu(const uint8_t* const* pages, int n_pages, int kv_heads, int bits, bool keys, uint16_t* rows,
                          cudaStream_t stream) {
  if (n_pages == 0) return;
  switch (bits) {
    case 1: launch<1>(pages, n_pages, kv_heads, keys, rows, stream); break;
    case 2: launch<2>(pages, n_pages, kv_heads, keys, rows, stream); break;
    case 3: launch<3>(pages, n_pages, kv_heads, keys, rows, stream); break;
    case 4: launch<4>(pages, n_pages, kv_heads, keys, rows, stream); break;
    default: fail("decode_int_pages_gpu: " + std::to_string(bits) + "-bit codes are not compiled (1 to 4)", __FILE__, __LINE__);
  }
  RINGKV_CHECK_CUDA(cudaGetLastError());
}

}  // namespace ringkv
