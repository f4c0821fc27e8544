// KV dumps refuse damage before allocating; generated KV has the structure of real keys and values.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <cstring>

#include "kernels/error.hpp"
#include "kvstore/binary_io.hpp"
#include "kvstore/kv_dump.hpp"
#include "kvstore/synthetic_kv.hpp"

namespace ringkv {
namespace {

class Files : public ::testing::Test {
 protected:
  // One file per test: ctest runs tests in parallel processes.
  std::string path = ::testing::TempDir() + "/ringkv_" +
                     ::testing::UnitTest::GetInstance()->current_test_info()->name() + ".bin";
  void TearDown() override { std::remove(path.c_str()); }

  // Writes `bytes`, runs `load`, and expects an Error whose message contains `words`.
  template <class Load>
  void expect_refused(const std::vector<uint8_t>& bytes, Load load, const std::string& words) {
    write_file_atomically(path, bytes);
    try {
      load(path);
      FAIL() << "accepted a damaged file (expected: " << words << ")";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(words), std::string::npos) << e.what();
    }
  }
};

KVDump small_dump() {
  SyntheticKVOptions o;
  o.layers = 2, o.kv_heads = 1, o.head_dim = 32, o.tokens = 100, o.n_queries = 3;
  return make_synthetic_kv(o);
}

TEST_F(Files, KVDumpRefusesDamageBeforeAllocating) {
  write_kv_dump(path, small_dump());
  const std::vector<uint8_t> good = read_file(path);
  auto load = [](const std::string& p) { read_kv_dump(p); };
  expect_refused({good.begin(), good.begin() + 3}, load, "not a RingKV KV dump");
  for (size_t cut : {size_t{20}, size_t{50}, good.size() / 2, good.size() - 1})
    expect_refused({good.begin(), good.begin() + cut}, load, "KV dump");
  std::vector<uint8_t> flipped = good;
  flipped[good.size() / 2] ^= 4;
  expect_refused(flipped, load, "checksum mismatch");
  // A header claiming 2e9 tokens, with a valid checksum: refused by its size, nothing allocated.
  std::vector<uint8_t> huge = good;
  const int32_t tokens = 2000000000;
  std::memcpy(huge.data() + 24, &tokens, 4);  // the tokens field
  const uint64_t sum = checksum64(huge.data(), huge.size() - 8);
  std::memcpy(huge.data() + huge.size() - 8, &sum, 8);
  expect_refused(huge, load, "does not match");
}

TEST(SyntheticKV, HasTheStructureOfRealKeysAndValues) {
  SyntheticKVOptions o;
  o.layers = 1, o.kv_heads = 1, o.tokens = 3000;
  const KVDump d = make_synthetic_kv(o);
  const KVDump again = make_synthetic_kv(o);
  EXPECT_EQ(d.keys, again.keys);  // deterministic
  const int dim = d.head_dim;
  // Outlier channels: the largest per-channel spread is far above the median one.
  std::vector<double> spread(dim);
  for (int c = 0; c < dim; ++c) {
    double m = 0, m2 = 0;
    for (int t = 0; t < d.tokens; ++t) m += d.keys[t * dim + c], m2 += d.keys[t * dim + c] * d.keys[t * dim + c];
    spread[c] = std::sqrt(m2 / d.tokens);
  }
  std::vector<double> sorted = spread;
  std::sort(sorted.begin(), sorted.end());
  EXPECT_GT(sorted.back() / sorted[dim / 2], 4.0);
  // The attention-sink token has a large key norm.
  auto norm = [&](int t) {
    double s = 0;
    for (int c = 0; c < dim; ++c) s += d.keys[t * dim + c] * d.keys[t * dim + c];
    return std::sqrt(s);
  };
  double mean_norm = 0;
  for (int t = 1; t < d.tokens; ++t) mean_norm += norm(t) / (d.tokens - 1);
  EXPECT_GT(norm(0), 3.0 * mean_norm);
  // Another seed gives another token sequence.
  o.seed = 2;
  const KVDump other = make_synthetic_kv(o);
  EXPECT_NE(other.keys, d.keys);
}

}  // namespace
}  // namespace ringkv
