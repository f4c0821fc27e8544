#include "kernels/compiled_variants.hpp"
#include "kernels/coupled_pages.cuh"
#include "kernels/coupled_pages_gpu.hpp"
#include "kernels/cuda_check.hpp"

namespace ringkv {

namespace {
void require_shape(const CoupledShapeGpu& s, const char* what) {
  RINGKV_REQUIRE(s.channels > 0 && s.head_dim % s.channels == 0 && s.bits >= 1 && s.bits <= 16 && s.page_tokens > 0 &&
                     static_cast<size_t>(s.page_tokens) * (s.head_dim / s.channels) * s.bits % 32 == 0,
                 std::string(what) + ": channel groups must divide head_dim, codes of 1 to 16 bits, a page's codes whole 32-bit words");
}
}  // namespace

void encode_coupled_pages_gpu(const CoupledShapeGpu& s, const float* rows, int n_pages, const float* const* centroids,
                              uint8_t* const* page_bytes, cudaStream_t stream) {
  require_shape(s, "encode_coupled_pages_gpu");
  if (n_pages == 0) return;
  // Tensor cores where the shape allows and two staged tables fit beside the codes; else the fp32 search.
  const size_t most = static_cast<size_t>(max_shared_bytes_per_block());
  const size_t mma_bytes = kernels::encode_coupled_mma_shared_bytes(s.page_tokens, s.head_dim, s.channels, s.bits);
  const bool tensor_cores = kernels::tensor_core_search_fits(s.channels, 1 << s.bits) && mma_bytes <= most;
  const size_t bytes =
      tensor_cores ? mma_bytes : kernels::encode_coupled_shared_bytes(s.page_tokens, s.head_dim, s.channels, s.bits);
  RINGKV_REQUIRE(bytes <= most, "encode_coupled_pages_gpu: a page's codes need " + std::to_string(bytes) +
                                    " bytes of shared memory; the GPU gives a block " + std::to_string(most));
  with_coupled_channels(s.channels, "encode_coupled_pages_gpu", [&](auto channels) {
    constexpr int kChannels = decltype(channels)::value;
    auto kernel = kernels::encode_coupled_pages_kernel<kChannels>;
    if constexpr (kernels::tensor_core_channels(kChannels))
      if (tensor_cores) kernel = kernels::encode_coupled_pages_mma_kernel<kChannels>;
    RINGKV_CHECK_CUDA(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(bytes)));
    kernel<<<n_pages, kernels::kCoupledPageThreads, bytes, stream>>>(rows, s.page_tokens, s.head_dim, s.bits, centroids, page_bytes);
  });
  RINGKV_CHECK_CUDA(cudaGetLastError());
}

void decode_coupled_pages_gpu(const CoupledShapeGpu& s, const uint8_t* const* pages, int n_pages, int kv_heads,
                              const float* const* centroids, uint16_t* rows, cudaStream_t stream) {
  require_shape(s, "decode_coupled_pages_gpu");
  if (n_pages == 0) return;
  kernels::decode_coupled_pages_kernel<<<n_pages * kv_heads, kernels::kCoupledPageThreads, 0, stream>>>(
      pages, kv_heads, s.page_tokens, s.head_dim, s.channels, s.bits, centroids, rows);
  RINGKV_CHECK_CUDA(cudaGetLastError());
}

}  // namespace ringkv
