#include <cstdint>
#include <utility>

#include "kernels/compiled_variants.hpp"
#include "kernels/cuda_check.hpp"
#include "kernels/decode_attention_gpu.hpp"
#include "kernels/encode_int.cuh"
#include "kernels/page_tile.cuh"

namespace ringkv {

void encode_int_pages_gpu(const float* rows, int n_pages, int bits, bool keys, uint8_t* const* page_bytes,
                          cudaStream_t stream) {
  if (n_pages == 0) return;
  RINGKV_REQUIRE(reinterpret_cast<uintptr_t>(rows) % 16 == 0, "encode_int_pages_gpu: rows must be 16-byte aligned");
  with_code_bits(bits, "encode_int_pages_gpu", [&](auto b) {
    constexpr int kBits = decltype(b)::value;
    constexpr int kShared = kernels::encode_int_shared_bytes();
    // The kernels for both roles, allowed their shared memory once per process.
    static const auto kernels_by_role = [] {
      const auto key_kernel = kernels::encode_int_kernel<kBits, true>, value_kernel = kernels::encode_int_kernel<kBits, false>;
      kernels::allow_shared(key_kernel, kShared);
      kernels::allow_shared(value_kernel, kShared);
      return std::pair{key_kernel, value_kernel};
    }();
    const auto kernel = keys ? kernels_by_role.first : kernels_by_role.second;
    kernel<<<n_pages, kernels::kEncodeThreads, kShared, stream>>>(rows, page_bytes);
  });
  RINGKV_CHECK_CUDA(cudaGetLastError());
}

}  // namespace ringkv
