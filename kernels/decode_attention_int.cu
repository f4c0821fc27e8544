#include <algorithm>

#include "kernels/cuda_check.hpp"
#include "kernels/decode_attention_gpu.hpp"
#include "kernels/decode_attention_int.cuh"
#include "kernels/decode_attention_tail_gpu.hpp"
#include "kernels/merge_states_gpu.hpp"

namespace ringkv {

int decode_attention_splits(int n_pages, int streams) {
  const int sms = multiprocessor_count();
  const int wanted = (4 * sms + streams - 1) / streams;  // blocks per stream for about 4 waves
  return std::max(1, std::min(n_pages, wanted));
}

namespace {
template <int BITS, int NQ>
void launch(const IntPagesGpu& p, const float* queries, float scale, int splits, float* split_out, float* split_lse,
            cudaStream_t stream) {
  const kernels::IntPageParams params{p.key_pages, p.value_pages, p.n_pages, (p.n_pages + splits - 1) / splits};
  kernels::decode_attention_int_kernel<BITS, 128, NQ>
      <<<dim3(splits, p.streams), kernels::kIntPageTokens, 0, stream>>>(params, queries, scale, split_out, split_lse);
}

template <int BITS>
void launch_bits(const IntPagesGpu& p, const float* queries, int n_queries, float scale, int splits, float* split_out,
                 float* split_lse, cudaStream_t stream) {
  switch (n_queries) {
    case 1: launch<BITS, 1>(p, queries, scale, splits, split_out, split_lse, stream); break;
    case 2: launch<BITS, 2>(p, queries, scale, splits, split_out, split_lse, stream); break;
    case 4: launch<BITS, 4>(p, queries, scale, splits, split_out, split_lse, stream); break;
    case 8: launch<BITS, 8>(p, queries, scale, splits, split_out, split_lse, stream); break;
    default: fail("decode_attention_int_gpu: " + std::to_string(n_queries) + " queries per KV head (1, 2, 4 or 8 are compiled)", __FILE__, __LINE__);
  }
}
}  // namespace

void decode_attention_int_gpu(const IntPagesGpu& pages, const float* queries, int n_queries, float scale, int splits,
                              float* split_out, float* split_lse, float* out, float* lse, cudaStream_t stream) {
  RINGKV_REQUIRE(splits >= 1 && pages.streams >= 1, "decode_attention_int_gpu: splits and streams must be positive");
  switch (pages.bits) {
    case 1: launch_bits<1>(pages, queries, n_queries, scale, splits, split_out, split_lse, stream); break;
    case 2: launch_bits<2>(pages, queries, n_queries, scale, splits, split_out, split_lse, stream); break;
    case 3: launch_bits<3>(pages, queries, n_queries, scale, splits, split_out, split_lse, stream); break;
    case 4: launch_bits<4>(pages, queries, n_queries, scale, splits, split_out, split_lse, stream); break;
    default: fail("decode_attention_int_gpu: " + std::to_string(pages.bits) + "-bit codes are not compiled (1 to 4)", __FILE__, __LINE__);
  }
  int states = splits;
  if (pages.tail_keys) {  // the tails fill the state slot after the splits
    float* tail_out = split_out + static_cast<size_t>(splits) * pages.streams * n_queries * 128;
    float* tail_lse = split_lse + static_cast<size_t>(splits) * pages.streams * n_queries;
    decode_attention_tails_gpu(pages.tail_keys, pages.tail_values, pages.tail_tokens, pages.streams, queries, n_queries,
                               scale, tail_out, tail_lse, stream);
    ++states;
  }
  RINGKV_CHECK_CUDA(cudaGetLastError());
  merge_states_gpu(states, pages.streams * n_queries, 128, split_out, split_lse, out, lse, stream);
}

}  // namespace ringkv
