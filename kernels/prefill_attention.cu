#include "kernels/cuda_check.hpp"
#include "kernels/prefill_attention.cuh"
#include "kernels/prefill_attention_gpu.hpp"

namespace ringkv {

void prefill_attention_gpu(const PrefillShape& s, const uint16_t* q, const uint16_t* k, const uint16_t* v, float* out,
                           float* lse, cudaStream_t stream) {
  RINGKV_REQUIRE(s.n_queries >= 0 && s.n_keys >= 0 && s.heads > 0 && s.kv_heads > 0 && s.heads % s.kv_heads == 0,
                 "prefill_attention_gpu: bad shape");
  if (s.n_queries == 0) return;
  const dim3 grid((s.n_queries + kernels::kPrefillQueries - 1) / kernels::kPrefillQueries, s.heads);
  switch (s.head_dim) {
    case 64: kernels::prefill_attention_kernel<64><<<grid, kernels::kPrefillThreads, 0, stream>>>(s, q, k, v, out, lse); break;
    case 128: kernels::prefill_attention_kernel<128><<<grid, kernels::kPrefillThreads, 0, stream>>>(s, q, k, v, out, lse); break;
    default: fail("prefill_attention_gpu: head_dim " + std::to_string(s.head_dim) + " is not compiled (64, 128)", __FILE__, __LINE__);
  }
  RINGKV_CHECK_CUDA(cudaGetLastError());
}

}  // namespace ringkv
