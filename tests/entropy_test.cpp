// The coupled-quantization entropy estimate.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <random>

#include "kernels/error.hpp"
#include "kvstore/entropy.hpp"
#include "kvstore/synthetic_kv.hpp"

namespace ringkv {
namespace {

TEST(Entropy, IndependentChannelsAddUpAndCopiesDoNot) {
  const size_t n = 200000;
  std::mt19937_64 rng(1);
  std::uniform_real_distribution<float> u(0.0f, 1.0f);
  std::vector<float> independent(n * 4), copies(n * 4);
  for (size_t t = 0; t < n; ++t)
    for (int c = 0; c < 4; ++c) {
      independent[t * 4 + c] = u(rng);
      copies[t * 4 + c] = c % 2 ? copies[t * 4 + c - 1] : u(rng);  // channel 1 copies 0, 3 copies 2
    }
  const std::vector<int> sizes{1, 2};
  const auto a = coupled_entropy(independent.data(), n, 4, sizes, 16);
  EXPECT_NEAR(a[0].joint_bits, 4.0, 0.01);  // 16 equally likely bins
  EXPECT_NEAR(a[1].joint_bits, a[1].marginal_sum_bits, 0.01);
  EXPECT_NEAR(a[1].shuffled_joint_bits, a[1].joint_bits, 0.01);
  EXPECT_EQ(a[1].groups, 2);
  EXPECT_EQ(a[1].samples, n);
  const auto b = coupled_entropy(copies.data(), n, 4, sizes, 16);
  EXPECT_NEAR(b[1].joint_bits, 0.5 * b[1].marginal_sum_bits, 0.01);
  EXPECT_NEAR(b[1].shuffled_joint_bits, b[1].marginal_sum_bits, 0.01);  // shuffling removes the copy
}

TEST(Entropy, SyntheticKeysAreCoupledBeyondEstimatorBias) {
  SyntheticKVOptions o;
  o.layers = 1, o.kv_heads = 1, o.tokens = 16384;
  const KVDump d = make_synthetic_kv(o);
  const std::vector<int> sizes{4, 8};
  for (const auto& e : coupled_entropy(d.keys.data(), d.tokens, d.head_dim, sizes, 16)) {
    EXPECT_LT(e.joint_bits, e.shuffled_joint_bits - 0.1) << "group " << e.group_size;
    EXPECT_LT(e.shuffled_joint_bits, e.marginal_sum_bits) << "group " << e.group_size;  // the plug-in bias
  }
}

TEST(Entropy, RefusesNonFiniteValuesAndBadGroupsAndTakesConstantChannels) {
  std::vector<float> rows(100 * 8, 1.0f);
  rows[57] = std::numeric_limits<float>::quiet_NaN();
  const std::vector<int> two{2};
  EXPECT_THROW(coupled_entropy(rows.data(), 100, 8, two, 16), Error);
  rows[57] = 1.0f;
  const std::vector<int> three{3};
  EXPECT_THROW(coupled_entropy(rows.data(), 100, 8, three, 16), Error);
  EXPECT_THROW(coupled_entropy(rows.data(), 100, 8, two, 300), Error);
  const auto constant = coupled_entropy(rows.data(), 100, 8, two, 16);  // constant channels: one bin each
  EXPECT_EQ(constant[0].joint_bits, 0.0);
  EXPECT_EQ(constant[0].marginal_sum_bits, 0.0);
}

}  // namespace
}  // namespace ringkv
