// GPU kernels against their CPU twins; skipped where no CUDA device is present.
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "kernels/attention_state.hpp"
#include "kernels/cuda_check.hpp"
#include "kernels/merge_states_gpu.hpp"

namespace ringkv {
namespace {

TEST(GpuMergeStates, MatchesCpuTwin) {
  if (cuda_device_count() == 0) GTEST_SKIP() << "no CUDA device: GPU kernel test skipped";
  std::mt19937 rng(3);
  std::normal_distribution<float> normal;
  for (int head_dim : {64, 96, 128, 256})
    for (int n_states : {1, 7, 33, 301}) {  // 301: more states than the block has threads
      const int n_queries = 37;
      std::vector<float> outs(static_cast<size_t>(n_states) * n_queries * head_dim), lses(static_cast<size_t>(n_states) * n_queries);
      for (float& x : outs) x = normal(rng);
      for (size_t i = 0; i < lses.size(); ++i) lses[i] = i % 11 == 3 ? -INFINITY : 5.0f * normal(rng);  // some empty states
      std::vector<float> want_out(static_cast<size_t>(n_queries) * head_dim), want_lse(n_queries);
      merge_states_cpu(n_states, n_queries, head_dim, outs.data(), lses.data(), want_out.data(), want_lse.data());
      DeviceBuffer<float> d_outs(outs.size()), d_lses(lses.size()), d_mo(want_out.size()), d_ml(want_lse.size());
      d_outs.upload(outs.data());
      d_lses.upload(lses.data());
      d_mo.poison();
      d_ml.poison();
      merge_states_gpu(n_states, n_queries, head_dim, d_outs.data(), d_lses.data(), d_mo.data(), d_ml.data(), nullptr);
      RINGKV_CHECK_CUDA(cudaDeviceSynchronize());
      std::vector<float> got_out(want_out.size()), got_lse(want_lse.size());
      d_mo.download(got_out.data());
      d_ml.download(got_lse.data());
      for (size_t i = 0; i < got_out.size(); ++i) ASSERT_NEAR(got_out[i], want_out[i], 1e-5f * (1 + std::fabs(want_out[i])));
      for (int q = 0; q < n_queries; ++q) {
        if (std::isinf(want_lse[q])) {
          ASSERT_EQ(got_lse[q], want_lse[q]) << "a query with no keys keeps lse = -inf";
        } else {
          ASSERT_NEAR(got_lse[q], want_lse[q], 1e-5f * (1 + std::fabs(want_lse[q])));
        }
      }
    }
}

}  // namespace
}  // namespace ringkv
