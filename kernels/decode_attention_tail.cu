#include "kernels/compiled_variants.hpp"
#include "kernels/cuda_check.hpp"
#include "kernels/decode_attention_tail.cuh"
#include "kernels/decode_attention_tail_gpu.hpp"
#include "kernels/merge_states_gpu.hpp"

namespace ringkv {

void decode_attention_tails_gpu(const uint16_t* const* keys, const uint16_t* const* values, const int* tokens, int streams,
                                const float* queries, int n_queries, float scale, float* out, float* lse,
                                cudaStream_t stream) {
  with_queries_per_kv_head(n_queries, "decode_attention_tails_gpu", [&](auto nq) {
    kernels::decode_attention_tail_kernel<128, decltype(nq)::value>
        <<<streams, kernels::kTailThreads, 0, stream>>>(keys, values, tokens, queries, scale, out, lse);
  });
  RINGKV_CHECK_CUDA(cudaGetLastError());
}

void merge_splits_and_tails_gpu(int splits, const TailsGpu& tails, int streams, const float* queries, int n_queries, int head_dim,
                                float scale, float* split_out, float* split_lse, float* out, float* lse, cudaStream_t stream) {
  int states = splits;
  if (tails.keys) {
    RINGKV_REQUIRE(head_dim == 128, "decode attention: tails need head_dim 128");
    decode_attention_tails_gpu(tails.keys, tails.values, tails.tokens, streams, queries, n_queries, scale,
                               split_out + static_cast<size_t>(splits) * streams * n_queries * head_dim,
                               split_lse + static_cast<size_t>(splits) * streams * n_queries, stream);
    ++states;
  }
  RINGKV_CHECK_CUDA(cudaGetLastError());
  merge_states_gpu(states, streams * n_queries, head_dim, split_out, split_lse, out, lse, stream);
}

}  // namespace ringkv
