// Causal prefill attention on the GPU against its CPU twin (bf16 inputs; the GPU rounds the
// probabilities to bf16 for the value product, hence a bf16-sized bound on out), on awkward sizes:
// a chunk continuing a cache, queries past the last key, one query, GQA and plain heads; and the
// paged store's two-call view (own page as computed, pages below as stored, merged).
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "kernels/cuda_check.hpp"
#include "kernels/half.hpp"
#include "kernels/prefill_attention_gpu.hpp"
#include "../test_util.hpp"

namespace ringkv {
namespace {

// Runs the calls on the CPU twin and the GPU (each call with its own keys and values, the later
// ones merging into the earlier's outputs) and compares the results.
struct PrefillCall {
  PrefillShape shape;
  std::vector<uint16_t> k, v;
};

void expect_gpu_matches_cpu(const std::vector<PrefillCall>& calls, const std::string& what) {
  const PrefillShape& s = calls.front().shape;
  const size_t nq = static_cast<size_t>(s.n_queries) * s.heads;
  const std::vector<uint16_t> q = test::random_bf16(nq * s.head_dim, 1, 1.f);
  std::vector<float> want(nq * s.head_dim), want_lse(nq);
  DeviceBuffer<uint16_t> dq(q.size());
  DeviceBuffer<float> dout(want.size()), dlse(want_lse.size());
  dq.upload(q.data());
  dout.poison(), dlse.poison();
  for (const PrefillCall& call : calls) {
    prefill_attention_cpu(call.shape, q.data(), call.k.data(), call.v.data(), want.data(), want_lse.data());
    DeviceBuffer<uint16_t> dk(call.k.size()), dv(call.v.size());
    dk.upload(call.k.data()), dv.upload(call.v.data());
    prefill_attention_gpu(call.shape, dq.data(), dk.data(), dv.data(), dout.data(), dlse.data(), nullptr);
    RINGKV_CHECK_CUDA(cudaDeviceSynchronize());
  }
  std::vector<float> got(want.size()), got_lse(want_lse.size());
  dout.download(got.data()), dlse.download(got_lse.data());
  const std::string shape = what + ": queries " + std::to_string(s.n_queries) + ", keys " + std::to_string(s.n_keys) +
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

PrefillCall call_with_random_keys(const PrefillShape& s, uint64_t seed) {
  const size_t n = static_cast<size_t>(s.n_keys) * s.kv_heads * s.head_dim + 8;
  return {s, test::random_bf16(n, seed, 1.f), test::random_bf16(n, seed + 1, 1.f)};
}

TEST(GpuPrefillAttention, MatchesCpuTwin) {
  if (cuda_device_count() == 0) GTEST_SKIP() << "no CUDA device: GPU kernel test skipped";
  const PrefillShape shapes[] = {
      {77, 277, 200, 8, 2, 128, 0.088f},    // a chunk after 200 cached tokens, GQA
      {130, 130, 0, 4, 4, 64, 0.125f},      // the first chunk, plain heads, head_dim 64
      {1, 1000, 999, 32, 8, 128, 0.088f},   // one query over a long cache
      {100, 50, 100, 8, 2, 128, 0.088f},    // queries past the last key see all of them
      {65, 0, 0, 4, 2, 64, 0.125f},         // no keys: lse -inf, out 0
  };
  for (const PrefillShape& s : shapes) expect_gpu_matches_cpu({call_with_random_keys(s, 2)}, "causal");
}

TEST(GpuPrefillAttention, PagedViewsMatchCpuTwin) {
  if (cuda_device_count() == 0) GTEST_SKIP() << "no CUDA device: GPU kernel test skipped";
  // A chunk that starts mid-page and ends mid-page, pages of 128 and of 16 (several pages per
  // block of queries), one that fills its page exactly.
  const PrefillShape shapes[] = {
      {300, 500, 200, 8, 2, 128, 0.088f},
      {333, 400, 67, 4, 4, 64, 0.125f},
      {256, 384, 128, 32, 8, 128, 0.088f},
  };
  for (const int page : {128, 16})
    for (PrefillShape s : shapes) {
      s.page = page;
      PrefillShape open = s, sealed = s;
      open.view = PrefillView::kOpenPage, sealed.view = PrefillView::kSealedPages;
      const std::string pages = "pages of " + std::to_string(page);
      expect_gpu_matches_cpu({call_with_random_keys(open, 2)}, "open page, " + pages);
      expect_gpu_matches_cpu({call_with_random_keys(sealed, 4)}, "sealed pages, " + pages);
      sealed.accumulate = true;
      expect_gpu_matches_cpu({call_with_random_keys(open, 2), call_with_random_keys(sealed, 4)}, "both merged, " + pages);
    }
}

// The kernels take the maxima of unscaled scores, which only a positive scale keeps: refused before
// any launch (no device needed).
TEST(GpuPrefillAttention, RefusesAScaleThatIsNotPositive) {
  for (const float scale : {0.f, -0.088f})
    EXPECT_THROW(prefill_attention_gpu({4, 4, 0, 2, 2, 128, scale}, nullptr, nullptr, nullptr, nullptr, nullptr, nullptr), Error);
}

}  // namespace
}  // namespace ringkv
