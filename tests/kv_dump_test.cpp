// KV dumps: shapes the reader would refuse are never written, and headers whose sizes overflow or
// do not match the file are refused before anything is allocated.
#include <gtest/gtest.h>

#include <cstdio>
#include <cstring>

#include "kernels/error.hpp"
#include "kvstore/binary_io.hpp"
#include "kvstore/kv_dump.hpp"

namespace ringkv {
namespace {

class KVDumpFile : public ::testing::Test {
 protected:
  // One file per test: ctest runs tests in parallel processes.
  std::string path = ::testing::TempDir() + "/ringkv_" +
                     ::testing::UnitTest::GetInstance()->current_test_info()->name() + ".dump";
  void TearDown() override { std::remove(path.c_str()); }

  // Rewrites the i32 header field `index` (0 = layers ... 5 = n_queries) and fixes the checksum, so
  // that only the size checks stand between the header and an allocation.
  void rewrite_header(std::vector<uint8_t>& file, int index, int32_t value) {
    std::memcpy(file.data() + 12 + 4 * index, &value, 4);
    const uint64_t sum = checksum64(file.data(), file.size() - 8);
    std::memcpy(file.data() + file.size() - 8, &sum, 8);
    write_file_atomically(path, file);
  }
  void expect_refused(const std::string& words) {
    try {
      read_kv_dump(path);
      FAIL() << "accepted a damaged dump (expected: " << words << ")";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(words), std::string::npos) << e.what();
    }
  }
};

KVDump tiny_dump(int n_queries) {
  KVDump d;
  d.layers = 2, d.kv_heads = 1, d.head_dim = 4, d.tokens = 3, d.query_heads_per_kv = 8, d.n_queries = n_queries;
  d.rope_theta = 500000.0;
  for (int i = 0; i < 2 * 3 * 4; ++i) d.keys.push_back(0.5f * i), d.values.push_back(-0.25f * i);
  for (int i = 0; i < 2 * n_queries * 4; ++i) d.queries.push_back(1.0f + i);
  return d;
}

TEST_F(KVDumpFile, RoundTripsWithAndWithoutQueries) {
  for (int n_queries : {0, 2}) {
    const KVDump d = tiny_dump(n_queries);
    write_kv_dump(path, d);
    const KVDump back = read_kv_dump(path);
    EXPECT_EQ(back.keys, d.keys);
    EXPECT_EQ(back.values, d.values);
    EXPECT_EQ(back.queries, d.queries);
    EXPECT_EQ(back.query_heads_per_kv, 8);
    EXPECT_EQ(back.rope_theta, 500000.0);
    EXPECT_EQ(back.values_at(1, 0)[0], -0.25f * 12);
    // magic, version, 6 x i32, f64, 2 x 24 keys and values, the queries, the checksum
    EXPECT_EQ(read_file(path).size(), 8 + 4 + 24 + 8 + 4 * (48 + 8 * n_queries) + 8u);
  }
}

TEST_F(KVDumpFile, WriterRefusesShapesTheReaderWouldRefuse) {
  KVDump odd = tiny_dump(1);
  odd.head_dim = 3;  // RoPE pairs channels: head_dim must be even
  EXPECT_THROW(write_kv_dump(path, odd), Error);
  KVDump short_values = tiny_dump(1);
  short_values.values.pop_back();
  EXPECT_THROW(write_kv_dump(path, short_values), Error);
  KVDump no_group = tiny_dump(1);
  no_group.query_heads_per_kv = 0;
  EXPECT_THROW(write_kv_dump(path, no_group), Error);
}

TEST_F(KVDumpFile, HeadersWithOverflowingOrNegativeSizesAreRefused) {
  write_kv_dump(path, tiny_dump(1));
  const std::vector<uint8_t> good = read_file(path);
  std::vector<uint8_t> file = good;
  rewrite_header(file, 5, -1);  // n_queries
  expect_refused("invalid header");
  // 2^30 layers x 2^30 KV heads x 2^30 head_dim: the byte count overflows 64 bits.
  file = good;
  rewrite_header(file, 0, 1 << 30);
  rewrite_header(file, 1, 1 << 30);
  rewrite_header(file, 2, 1 << 30);
  expect_refused("does not match");
  file = good;
  rewrite_header(file, 3, 4);  // one token more than the file holds
  expect_refused("does not match");
}

}  // namespace
}  // namespace ringkv
