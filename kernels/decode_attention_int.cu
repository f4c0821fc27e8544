#include <algorithm>

#include "kernels/compiled_variants.hpp"
#include "kernels/cuda_check.hpp"
#include "kernels/decode_attention_gpu.hpp"
#include "kernels/decode_attention_int.cuh"
#include "kernels/decode_attention_tail_gpu.hpp"

namespace ringkv {

int decode_attention_splits(int n_pages, int streams) {
  const int sms = multiprocessor_count();
  const int wanted = (4 * sms + streams - 1) / streams;  // blocks per stream for about 4 waves
  return std::max(1, std::min(n_pages, wanted));
}

void decode_attention_int_gpu(const IntPagesGpu& pages, const float* queries, int n_queries, float scale, int splits,
                              float* split_out, float* split_lse, float* out, float* lse, cudaStream_t stream) {
  RINGKV_REQUIRE(splits >= 1 && pages.streams >= 1, "decode_attention_int_gpu: splits and streams must be positive");
  const kernels::IntPageParams params{pages.key_pages, pages.value_pages, pages.n_pages, (pages.n_pages + splits - 1) / splits};
  with_code_bits(pages.bits, "decode_attention_int_gpu", [&](auto bits) {
    with_queries_per_kv_head(n_queries, "decode_attention_int_gpu", [&](auto nq) {
      kernels::decode_attention_int_kernel<decltype(bits)::value, 128, decltype(nq)::value>
          <<<dim3(splits, pages.streams), kernels::kIntPageTokens, 0, stream>>>(params, queries, scale, split_out, split_lse);
    });
  });
  merge_splits_and_tails_gpu(splits, {pages.tail_keys, pages.tail_values, pages.tail_tokens}, pages.streams, queries, n_queries,
                             128, scale, split_out, split_lse, out, lse, stream);
}

}  // namespace ringkv
