// Decode attention over a bf16 cache on the GPU against its CPU twin (prefill attention of one
// query after the last key), on awkward lengths and every head grouping, outputs poisoned first.
#include <gtest/gtest.h>

#include <cmath>

#include "kernels/cuda_check.hpp"
#include "kernels/decode_attention_bf16_gpu.hpp"
#include "kernels/prefill_attention.hpp"
#include "../test_util.hpp"

namespace ringkv {
namespace {

TEST(GpuDecodeAttentionBf16, MatchesCpuTwin) {
  if (cuda_device_count() == 0) GTEST_SKIP() << "no CUDA device: GPU kernel test skipped";
  const DecodeShape shapes[] = {
      {1, 2, 1, 128, 0.088f},      // the first token
      {77, 32, 8, 128, 0.088f},    // fewer keys than one warp step covers per block
      {5003, 2, 1, 128, 0.088f},   // several splits, a ragged last one
      {20011, 32, 8, 128, 0.088f}, // Llama-3-8B heads
      {3001, 16, 2, 128, 0.088f},  // 8 query heads per KV head
      {999, 4, 4, 64, 0.125f},     // plain heads, head_dim 64
      {0, 4, 1, 64, 0.125f},       // no keys: lse -inf, out 0
  };
  for (const DecodeShape& s : shapes) {
    const size_t rows = static_cast<size_t>(s.n_keys) * s.kv_heads * s.head_dim;
    const std::vector<uint16_t> q = test::random_bf16(static_cast<size_t>(s.heads) * s.head_dim, 1, 1.f),
                                k = test::random_bf16(rows + 8, 2, 1.f), v = test::random_bf16(rows + 8, 3, 1.f);
    std::vector<float> want(q.size()), want_lse(s.heads), queries(q.size());
    const PrefillShape one_query{1, s.n_keys, std::max(s.n_keys - 1, 0), s.heads, s.kv_heads, s.head_dim, s.scale};
    prefill_attention_cpu(one_query, q.data(), k.data(), v.data(), want.data(), want_lse.data());
    for (size_t i = 0; i < q.size(); ++i) queries[i] = bf16_to_float(q[i]);

    // The key count as an argument, then read on the device (as a CUDA graph's decode step reads it).
    DeviceBuffer<int> device_keys(1);
    device_keys.upload(&s.n_keys);
    for (const int* counted : {static_cast<const int*>(nullptr), static_cast<const int*>(device_keys.data())}) {
      DecodeShape run = s;
      run.device_keys = counted;
      const int splits = decode_attention_bf16_splits(s.n_keys, s.kv_heads);
      DeviceBuffer<uint16_t> dk(k.size()), dv(v.size());
      DeviceBuffer<float> dq(queries.size()), dout(want.size()), dlse(want_lse.size());
      DeviceBuffer<float> split_out(static_cast<size_t>(splits) * want.size()), split_lse(static_cast<size_t>(splits) * s.heads);
      dq.upload(queries.data()), dk.upload(k.data()), dv.upload(v.data());
      dout.poison(), dlse.poison(), split_out.poison(), split_lse.poison();
      decode_attention_bf16_gpu(run, dq.data(), dk.data(), dv.data(), splits, split_out.data(), split_lse.data(), dout.data(),
                                dlse.data(), nullptr);
      RINGKV_CHECK_CUDA(cudaDeviceSynchronize());
      std::vector<float> got(want.size()), got_lse(want_lse.size());
      dout.download(got.data()), dlse.download(got_lse.data());
      const std::string shape = "keys " + std::to_string(s.n_keys) + ", heads " + std::to_string(s.heads) + "/" +
                                std::to_string(s.kv_heads) + ", head_dim " + std::to_string(s.head_dim) + ", splits " +
                                std::to_string(splits) + (counted ? ", count on the device" : "");
      for (size_t i = 0; i < got.size(); ++i) ASSERT_FALSE(std::isnan(got[i])) << shape << " element " << i;
      if (s.n_keys > 0) {
        EXPECT_LT(test::relative_error(got.data(), want.data(), want.size()), 1e-4) << shape;
      }
      for (int h = 0; h < s.heads; ++h) {
        if (s.n_keys == 0) {
          EXPECT_TRUE(std::isinf(got_lse[h]) && got_lse[h] < 0) << shape << " head " << h;
          EXPECT_EQ(got[static_cast<size_t>(h) * s.head_dim], 0.f) << shape << " head " << h;
        } else {
          EXPECT_NEAR(got_lse[h], want_lse[h], 1e-4 * (1 + std::fabs(want_lse[h]))) << shape << " head " << h;
        }
      }
    }
  }
}

}  // namespace
}  // namespace ringkv
