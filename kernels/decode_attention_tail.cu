#include "kernels/cuda_check.hpp"
#include "kernels/decode_attention_tail.cuh"
#include "kernels/decode_attention_tail_gpu.hpp"

namespace ringkv {

namespace {
template <int NQ>
void launch(const uint16_t* const* keys, const uint16_t* const* values, const int* tokens, int streams, const float* queries,
            float scale, float* out, float* lse, cudaStream_t stream) {
  kernels::decode_attention_tail_kernel<128, NQ><<<streams, kernels::kTailThreads, 0, stream>>>(keys, values, tokens, queries,
                                                                                              scale, out, lse);
}
}  // namespace

void decode_attention_tails_gpu(const uint16_t* const* keys, const uint16_t* const* values, const int* tokens, int streams,
                                const float* queries, int n_queries, float scale, float* out, float* lse,
                                cudaStream_t stream) {
  switch (n_queries) {
    case 1: launch<1>(keys, values, tokens, streams, queries, scale, out, lse, stream); break;
    case 2: launch<2>(keys, values, tokens, streams, queries, scale, out, lse, stream); break;
    case 4: launch<4>(keys, values, tokens, streams, queries, scale, out, lse, stream); break;
    case 8: launch<8>(keys, values, tokens, streams, queries, scale, out, lse, stream); break;
    default: fail("decode_attention_tails_gpu: " + std::to_string(n_queries) + " queries per KV head (1, 2, 4 or 8 are compiled)", __FILE__, __LINE__);
  }
  RINGKV_CHECK_CUDA(cudaGetLastError());
}

}  // namespace ringkv
