#include <algorithm>
#include <utility>

#include "kernels/compiled_variants.hpp"
#include "kernels/cuda_check.hpp"
#include "kernels/decode_attention_gpu.hpp"
#include "kernels/decode_attention_int.cuh"
#include "kernels/decode_attention_tail_gpu.hpp"
#include "kernels/page_tile.cuh"

namespace ringkv {

int decode_attention_splits(int n_pages, int streams) {
  const int sms = multiprocessor_count();
  const int wanted = (4 * sms + streams - 1) / streams;  // blocks per stream for about 4 waves
  return std::max(1, std::min(n_pages, wanted));
}

namespace {
// The kernel for BITS with its shared memory allowed (and as much of the multiprocessor's memory
// as can be shared), and that memory's size. Configured once per process (a rank drives one GPU):
// decode launches it in every layer of every step, and each attribute call costs microseconds.
template <int BITS, int NQ>
auto configured_int_kernel() {
  static const auto configured = [] {
    const auto kernel = kernels::decode_attention_int_kernel<BITS, NQ>;
    const size_t shared = kernels::kIntWarpsPerBlock * kernels::int_warp_shared_bytes<BITS>();
    kernels::allow_shared(kernel, shared);
    RINGKV_CHECK_CUDA(cudaFuncSetAttribute(kernel, cudaFuncAttributePreferredSharedMemoryCarveout, cudaSharedmemCarveoutMaxShared));
    return std::pair{kernel, shared};
  }();
  return configured;
}
}  // namespace

int decode_attention_int_splits(int n_pages, int streams, int bits) {
  int blocks = 0;
  with_code_bits(bits, "decode_attention_int_splits", [&](auto b) {
    static const int resident = [] {  // blocks per multiprocessor, asked once per process
      const auto [kernel, shared] = configured_int_kernel<decltype(b)::value, kernels::kIntMaxQueries>();
      int n = 0;
      RINGKV_CHECK_CUDA(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&n, kernel, 32 * kernels::kIntWarpsPerBlock, shared));
      return n;
    }();
    blocks = resident;
  });
  const int wave = std::max(1, blocks) * kernels::kIntWarpsPerBlock * multiprocessor_count();
  return std::max(1, std::min(n_pages, wave / streams));
}

void decode_attention_int_gpu(const IntPagesGpu& pages, const float* queries, int n_queries, float scale, int splits,
                              float* split_out, float* split_lse, float* out, float* lse, cudaStream_t stream) {
  RINGKV_REQUIRE(splits >= 1 && pages.streams >= 1, "decode_attention_int_gpu: splits and streams must be positive");
  const kernels::IntPageParams params{pages.key_pages, pages.value_pages, pages.n_pages, (pages.n_pages + splits - 1) / splits};
  with_code_bits(pages.bits, "decode_attention_int_gpu", [&](auto bits) {
    constexpr int kWarps = kernels::kIntWarpsPerBlock;
    with_queries_per_kv_head(n_queries, "decode_attention_int_gpu", [&](auto nq) {
      const auto [kernel, shared] = configured_int_kernel<decltype(bits)::value, decltype(nq)::value>();
      kernel<<<dim3((splits + kWarps - 1) / kWarps, pages.streams), 32 * kWarps, shared, stream>>>(params, splits, queries, scale,
                                                                                                 split_out, split_lse);
    });
  });
  merge_splits_and_tails_gpu(splits, {pages.tail_keys, pages.tail_values, pages.tail_tokens}, pages.streams, queries, n_queries,
                             128, scale, split_out, split_lse, out, lse, stream);
}

}  // namespace ringkv
