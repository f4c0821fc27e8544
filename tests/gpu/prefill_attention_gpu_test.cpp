// Causal prefill attention on the GPU against its CPU twin (bf16 inputs; the GPU rounds the
// probabilities to bf16 for the value product, hence a bf16-sized bound on out), on awkward sizes:
// a chunk continuing a cache, queries past the last key, one query, GQA and plain heads.
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "kernels/cuda_check.hpp"
#include "kernels/half.hpp"
#include "kernels/prefill_attention_gpu.hpp"
#include "../test_util.hpp"

namespace ringkv {
namespace {

TEST(GpuPrefillAttention, MatchesCpuTwin) {
  if (cuda_device_count() == 0) GTEST_SKIP() << "no CUDA device: GPU kernel test skipped";
  const PrefillShape shapes[] = {
      {77, 277, 200, 8, 2, 128, 0.088f},    // a chunk after 200 cached tokens, GQA
      {130, 130, 0, 4, 4, 64, 0.125f},      // the first chunk, plain heads, head_dim 64
      {1, 1000, 999, 32, 8, 128, 0.088f},   // one query over a long cache
      {100, 50, 100, 8, 2, 128, 0.088f},    // queries past the last key see all of them
      {65, 0, 0, 4, 2, 64, 0.125f},         // no keys: lse -inf, out 0
  };
  for (const PrefillShape& s : shapes) {
    const size_t nq = static_cast<size_t>(s.n_queries) * s.heads, nk = static_cast<size_t>(s.n_keys) * s.kv_heads;
    const std::vector<uint16_t> q = test::random_bf16(nq * s.head_dim, 1, 1.f), k = test::random_bf16(nk * s.head_dim + 8, 2, 1.f),
                                v = test::random_bf16(nk * s.head_dim + 8, 3, 1.f);
    std::vector<float> want(nq * s.head_dim), want_lse(nq);
    prefill_attention_cpu(s, q.data(), k.data(), v.data(), want.data(), want_lse.data());
    DeviceBuffer<uint16_t> dq(q.size()), dk(k.size()), dv(v.size());
    DeviceBuffer<float> dout(want.size()), dlse(want_lse.size());
    dq.upload(q.data()), dk.upload(k.data()), dv.upload(v.data());
    dout.poison(), dlse.poison();
    prefill_attention_gpu(s, dq.data(), dk.data(), dv.data(), dout.data(), dlse.data(), nullptr);
    RINGKV_CHECK_CUDA(cudaDeviceSynchronize());
    std::vector<float> got(want.size()), got_lse(want_lse.size());
    dout.download(got.data()), dlse.download(got_lse.data());
    const std::string shape = "queries " + std::to_string(s.n_queries) + ", keys " + std::to_string(s.n_keys) +
                              ", offset " + std::to_string(s.q_offset) + ", head_dim " + std::to_string(s.head_dim);
    if (s.n_keys > 0) {
      EXPECT_LT(test::relative_error(got.data(), want.data(), want.size()), 1e-2) << shape;
    }
    for (size_t i = 0; i < want.size(); ++i) ASSERT_FALSE(std::isnan(got[i])) << shape << " element " << i;
    for (size_t i = 0; i < want_lse.size(); ++i) {
      if (std::isinf(want_lse[i])) {
        ASSERT_EQ(got_lse[i], want_lse[i]) << shape << " row " << i;
        ASSERT_EQ(got[i * s.head_dim], 0.f) << shape << " row " << i;
      } else {
        ASSERT_NEAR(got_lse[i], want_lse[i], 1e-3 * (1 + std::fabs(want_lse[i]))) << shape << " row " << i;
      }
    }
  }
}

}  // namespace
}  // namespace ringkv
