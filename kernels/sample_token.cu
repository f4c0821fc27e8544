#include "kernels/cuda_check.hpp"
#include "kernels/sample_token.cuh"
#include "kernels/sample_token_gpu.hpp"

namespace ringkv {

void sample_token_gpu(const float* logits, int n, float temperature, float top_p, double u, int32_t* out, cudaStream_t stream) {
  RINGKV_REQUIRE(n > 0 && n < kMostSampledTokens, "sampling needs 1 to 2^23 - 1 logits");
  RINGKV_REQUIRE(temperature >= 0 && top_p > 0 && top_p <= 1 && u >= 0 && u < 1,
                 "sample_token_gpu: temperature must not be negative, top-p in (0, 1], u in [0, 1)");
  kernels::sample_token_kernel<<<1, kernels::kSampleThreads, 0, stream>>>(logits, n, temperature, top_p, u, out);
  RINGKV_CHECK_CUDA(cudaGetLastError());
}

}  // namespace ringkv
