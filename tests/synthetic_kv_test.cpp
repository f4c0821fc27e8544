// Generated KV data: queries attend like a trained model's heads, streams are independent of threads.
#include <gtest/gtest.h>
#include <omp.h>

#include <algorithm>
#include <cmath>

#include "kernels/rope.hpp"
#include "kvstore/synthetic_kv.hpp"

namespace ringkv {
namespace {

struct Attention {
  double entropy_nats = 0, top = 0, sink = 0;
};

// Softmax attention of one post-RoPE query over the post-RoPE keys of (layer 0, head 0).
Attention attend(const KVDump& d, const std::vector<float>& keys_post, int query) {
  const int dim = d.head_dim;
  const float* q = d.queries_at(0, 0) + static_cast<size_t>(query) * dim;
  std::vector<double> p(d.tokens);
  for (int t = 0; t < d.tokens; ++t) {
    double s = 0;
    for (int c = 0; c < dim; ++c) s += static_cast<double>(q[c]) * keys_post[static_cast<size_t>(t) * dim + c];
    p[t] = s / std::sqrt(static_cast<double>(dim));
  }
  const double top = *std::max_element(p.begin(), p.end());
  double z = 0;
  for (double& x : p) z += (x = std::exp(x - top));
  Attention a;
  for (double x : p) a.entropy_nats -= x > 0 ? x / z * std::log(x / z) : 0.0, a.top = std::max(a.top, x / z);
  a.sink = p[0] / z;
  return a;
}

TEST(SyntheticKV, QueriesAttendPeakedButNotOneHot) {
  SyntheticKVOptions o;
  o.layers = 1, o.kv_heads = 1, o.tokens = 2048, o.n_queries = 16;
  const KVDump d = make_synthetic_kv(o);
  std::vector<float> keys_post(d.keys_at(0, 0), d.keys_at(0, 0) + d.stream_elements());
  apply_rope_rows(keys_post.data(), d.tokens, 0, RopeTable::plain(d.head_dim, d.rope_theta));
  const double uniform = std::log(static_cast<double>(d.tokens));
  double sink = 0;
  for (int q = 0; q < d.n_queries; ++q) {
    const Attention a = attend(d, keys_post, q);
    EXPECT_LT(a.entropy_nats, 0.7 * uniform) << "query " << q;  // far from uniform
    EXPECT_GT(a.entropy_nats, 0.2 * uniform) << "query " << q;  // spread over several tokens
    EXPECT_LT(a.top, 0.9) << "query " << q;                     // not one-hot
    sink += a.sink / d.n_queries;
  }
  EXPECT_GT(sink, 0.02);  // the sink draws a share of the attention
}

TEST(SyntheticKV, ValuesHaveWeakerOutlierChannelsThanKeys) {
  SyntheticKVOptions o;
  o.layers = 1, o.kv_heads = 1, o.tokens = 3000;
  const KVDump d = make_synthetic_kv(o);
  // Largest over median per-channel root-mean-square.
  auto outlier_ratio = [&](const float* rows) {
    std::vector<double> rms(d.head_dim);
    for (int c = 0; c < d.head_dim; ++c) {
      for (int t = 0; t < d.tokens; ++t) rms[c] += rows[t * d.head_dim + c] * rows[t * d.head_dim + c];
      rms[c] = std::sqrt(rms[c] / d.tokens);
    }
    std::sort(rms.begin(), rms.end());
    return rms.back() / rms[d.head_dim / 2];
  };
  EXPECT_GT(outlier_ratio(d.keys_at(0, 0)), 2.0 * outlier_ratio(d.values_at(0, 0)));
}

TEST(SyntheticKV, SameDataOnAnyThreadCount) {
  SyntheticKVOptions o;
  o.layers = 2, o.kv_heads = 3, o.head_dim = 32, o.tokens = 300, o.n_queries = 4;
  const int threads = omp_get_max_threads();
  omp_set_num_threads(1);
  const KVDump serial = make_synthetic_kv(o);
  omp_set_num_threads(std::max(threads, 4));
  const KVDump parallel = make_synthetic_kv(o);
  omp_set_num_threads(threads);
  EXPECT_EQ(serial.keys, parallel.keys);
  EXPECT_EQ(serial.values, parallel.values);
  EXPECT_EQ(serial.queries, parallel.queries);
  EXPECT_NE(std::vector<float>(serial.keys_at(0, 0), serial.keys_at(0, 0) + serial.stream_elements()),
            std::vector<float>(serial.keys_at(1, 2), serial.keys_at(1, 2) + serial.stream_elements()));
}

}  // namespace
}  // namespace ringkv
