// The GPU token sampler against its CPU twin: the same token for the same logits and draw (masses
// are fixed-point integers); skipped without a CUDA device.
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "kernels/cuda_check.hpp"
#include "kernels/sample_token.hpp"
#include "kernels/sample_token_gpu.hpp"

namespace ringkv {
namespace {

TEST(GpuSampleToken, MatchesCpuTwin) {
  if (cuda_device_count() == 0) GTEST_SKIP() << "no CUDA device: GPU kernel test skipped";
  std::mt19937 rng(8);
  std::normal_distribution<float> normal;
  std::uniform_real_distribution<double> uniform;
  DeviceBuffer<int32_t> token(1);
  for (int n : {1, 3, 1000, 32003, 128256})
    for (float temperature : {0.0f, 0.6f, 1.0f, 3.0f})
      for (float top_p : {1.0f, 0.9f, 0.3f, 0.001f})
        for (int trial = 0; trial < 4; ++trial) {
          std::vector<float> logits(n);
          for (float& x : logits) x = 5 * normal(rng);
          if (trial % 2)  // runs of equal logits: ties at the nucleus' edge and at the largest
            for (float& x : logits) x = std::round(x);
          DeviceBuffer<float> d_logits(n);
          d_logits.upload(logits.data());
          for (double u : {0.0, uniform(rng), uniform(rng), 0.999999}) {
            token.poison();
            sample_token_gpu(d_logits.data(), n, temperature, top_p, u, token.data(), nullptr);
            RINGKV_CHECK_CUDA(cudaDeviceSynchronize());
            int32_t got = -1;
            token.download(&got);
            ASSERT_EQ(got, sample_token_cpu(logits.data(), logits.size(), temperature, top_p, u))
                << n << " tokens, T " << temperature << ", top-p " << top_p << ", u " << u << ", trial " << trial;
          }
        }
}

}  // namespace
}  // namespace ringkv
