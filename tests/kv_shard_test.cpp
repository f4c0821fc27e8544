// The shard: sealing, attention over pages plus tail, exact storage accounting, the memory budget
// and snapshots.
#include <gtest/gtest.h>

#include <climits>

#include <cstdio>
#include <filesystem>
#include <fstream>

#include "kvstore/binary_io.hpp"
#include "kvstore/kv_shard.hpp"
#include "test_util.hpp"

namespace ringkv {
namespace {

ShardConfig config_for(const std::string& spec, int head_dim = 64, int page = 32) {
  ShardConfig c;
  c.layers = 2;
  c.kv_heads = 2;
  c.head_dim = head_dim;
  c.page_size = page;
  c.spec = KVSpec::parse(spec);
  c.rope = RopeTable::plain(head_dim, 10000.0);
  return c;
}

Calibration calibration_for(const ShardConfig& c) {
  Calibration cal;
  const std::vector<float> rows = test::structured_rows(1000, c.head_dim, 21);
  const std::vector<int> pos = test::iota_positions(1000);
  for (int l = 0; l < c.layers; ++l)
    for (int h = 0; h < c.kv_heads; ++h) {
      CodecContext ctx{c.head_dim, c.page_size, l, h, &cal};
      const CalibrationSamples s{rows.data(), pos.data(), nullptr, pos.size()};
      learn_codec_tables(c.spec.key, Role::Key, ctx, c.rope, s, cal);
      learn_codec_tables(c.spec.value, Role::Value, ctx, c.rope, s, cal);
    }
  return cal;
}

// Fills every (layer, head) with `tokens` tokens appended in uneven pieces.
void fill(KVShard& shard, int tokens, uint64_t seed) {
  const int d = shard.config().head_dim;
  for (int l = 0; l < shard.config().layers; ++l)
    for (int h = 0; h < shard.config().kv_heads; ++h) {
      const std::vector<float> k = test::structured_rows(tokens, d, seed + l * 10 + h);
      const std::vector<float> v = test::structured_rows(tokens, d, seed + l * 10 + h + 5);
      for (int t = 0; t < tokens;) {
        const int n = std::min(tokens - t, 1 + (t * 7) % 45);
        shard.append(l, h, k.data() + static_cast<size_t>(t) * d, v.data() + static_cast<size_t>(t) * d, n, t);
        t += n;
      }
    }
}

class ShardAttention : public ::testing::TestWithParam<std::string> {};

TEST_P(ShardAttention, EqualsAttentionOverDecodedContents) {
  const ShardConfig c = config_for(GetParam());
  const Calibration cal = calibration_for(c);
  KVShard shard(c, &cal);
  fill(shard, 1000, 3);  // 31 sealed pages and an 8-token tail
  const std::vector<float> q = test::gaussian(4 * 64, 7, 0.3f);
  for (int l = 0; l < 2; ++l)
    for (int h = 0; h < 2; ++h) {
      ASSERT_EQ(shard.tokens(l, h), 1000u);
      const KVRows rows = shard.decode_all(l, h);
      ASSERT_EQ(rows.positions, test::iota_positions(1000));
      const AttentionState want = reference_attention(q, 4, rows.keys, rows.values, 1000, 64, 0.125f);
      const AttentionState got = shard.attend(l, h, q.data(), 4, 0.125f);
      EXPECT_LT(test::relative_error(got.out.data(), want.out.data(), want.out.size()), 2e-5);
    }
}

INSTANTIATE_TEST_SUITE_P(Codecs, ShardAttention,
                         ::testing::Values("bf16", "int:bits=2,group=32", "kvquant:bits=3,outliers=0.02,sink=1",
                                           "cq:channels=4,bits=8", "rvq:depth=2,codes=64,group=8|int:bits=4"));

TEST(Shard, VisitingInBatchesGivesTheDecodedRowsAndStopsBelowAPosition) {
  KVShard shard(config_for("int:bits=2,group=32"), nullptr);
  fill(shard, 1000, 5);  // pages of 32 tokens and an 8-token tail
  const KVRows all = shard.decode_all(1, 1);
  KVRows joined;
  int batches = 0;
  shard.visit_rows(1, 1, INT_MAX, 100, [&](const KVRows& rows) {
    EXPECT_LE(rows.size(), 100u + 32u);
    ++batches;
    joined.keys.insert(joined.keys.end(), rows.keys.begin(), rows.keys.end());
    joined.values.insert(joined.values.end(), rows.values.begin(), rows.values.end());
    joined.positions.insert(joined.positions.end(), rows.positions.begin(), rows.positions.end());
  });
  EXPECT_GE(batches, 7);  // 1000 rows, batches of four 32-token pages
  EXPECT_EQ(joined.positions, all.positions);
  EXPECT_EQ(joined.keys, all.keys);
  EXPECT_EQ(joined.values, all.values);
  int last = -1;
  shard.visit_rows(1, 1, 70, 100, [&](const KVRows& rows) { last = rows.positions.back(); });
  EXPECT_EQ(last, 95);  // the page that begins at 64 is the last one visited
}

TEST(Shard, NonContiguousRangesSealEarlyAndKeepPositions) {
  KVShard shard(config_for("int:bits=4"), nullptr);
  const std::vector<float> rows = test::structured_rows(50, 64, 1);
  shard.append(0, 0, rows.data(), rows.data(), 20, 0);        // zigzag: chunk 0 ...
  shard.append(0, 0, rows.data(), rows.data(), 30, 1000);     // ... and a later chunk
  const std::vector<int> pos = shard.decode_all(0, 0).positions;
  ASSERT_EQ(pos.size(), 50u);
  EXPECT_EQ(pos[19], 19);
  EXPECT_EQ(pos[20], 1000);
  EXPECT_EQ(pos[49], 1029);
}

// int 2-bit, group 32, head_dim 64, page 32; 1000 tokens per stream, 4 streams:
//   31 sealed pages per stream; a page: keys 64 (lo, step) pairs, values 32 x 2 pairs, 4 bytes each,
//   plus 32 x 64 x 2 bits of codes = 512 bytes per role; 2 headers of 8 bytes; 8-token bf16 tail.
TEST(Shard, BitsPerElementAreExact) {
  KVShard shard(config_for("int:bits=2,group=32"), nullptr);
  fill(shard, 1000, 1);
  const StorageStats s = shard.stats();
  EXPECT_EQ(s.tokens, 4000u);
  EXPECT_EQ(s.sealed_payload, 4u * 31 * ((64 * 4 + 512) + (32 * 2 * 4 + 512)));
  EXPECT_EQ(s.page_headers, 4u * 31 * 16);
  EXPECT_EQ(s.tail, 4u * 8 * 64 * 2 * 2);
  EXPECT_EQ(s.codebooks, 0u);
  const double bytes = 4.0 * 31 * (768 + 768 + 16) + 4.0 * 8 * 64 * 4;
  EXPECT_DOUBLE_EQ(s.bits_per_element(64), bytes * 8 / (2.0 * 4000 * 64));
}

TEST(Shard, CodebooksAreCountedInBits) {
  const ShardConfig c = config_for("cq:channels=8,bits=8");
  const Calibration cal = calibration_for(c);
  KVShard shard(c, &cal);
  fill(shard, 64, 1);
  // 8 groups x 256 centroids x 8 channels of fp32 per role and stream.
  EXPECT_EQ(shard.stats().codebooks, 4u * 2 * 8 * 256 * 8 * 4);
}

TEST(Shard, MoveAssignmentOverAShardWithPagesReleasesItsMemoryInOrder) {
  KVShard held(config_for("int:bits=2,group=32"), nullptr), loaded(config_for("int:bits=2,group=32"), nullptr);
  fill(held, 300, 1);
  fill(loaded, 100, 2);
  held = std::move(loaded);  // held's pages go back to its own budget before that budget goes (ASan checks)
  EXPECT_EQ(held.tokens(0, 0), 100u);
  EXPECT_EQ(held.decode_all(1, 1).positions.size(), 100u);
}

TEST(Shard, RefusesWhatDoesNotFitWithAClearMessage) {
  ShardConfig c = config_for("bf16");
  c.memory_budget_bytes = 200 * 1024;  // tails take 4 x 2 x 32 x 64 x 2 = 32 KiB; a slab 64 x 4 KiB per role
  KVShard shard(c, nullptr);
  try {
    fill(shard, 100, 1);
    FAIL() << "the budget must refuse a second slab";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("out of KV memory"), std::string::npos) << e.what();
  }
  EXPECT_GT(shard.bytes_needed(100), c.memory_budget_bytes);
}

class Snapshot : public ::testing::Test {
 protected:
  // One file per test: ctest runs tests in parallel processes.
  std::string path = ::testing::TempDir() + "/ringkv_" +
                     ::testing::UnitTest::GetInstance()->current_test_info()->name() + ".bin";
  void TearDown() override { std::remove(path.c_str()); }
};

TEST_F(Snapshot, RoundTripIsBitExact) {
  const ShardConfig c = config_for("kvquant:bits=2,outliers=0.02,sink=1|cq:channels=4,bits=6");
  const Calibration cal = calibration_for(c);
  KVShard shard(c, &cal);
  fill(shard, 555, 9);
  shard.save_snapshot(path);
  KVShard back = KVShard::load_snapshot(path, c, &cal);
  back.save_snapshot(path + "2");
  EXPECT_EQ(read_file(path), read_file(path + "2"));
  std::remove((path + "2").c_str());
  const std::vector<float> q = test::gaussian(2 * 64, 3);
  const AttentionState a = shard.attend(1, 1, q.data(), 2, 0.1f), b = back.attend(1, 1, q.data(), 2, 0.1f);
  EXPECT_EQ(a.out, b.out);
  EXPECT_EQ(a.lse, b.lse);
  EXPECT_EQ(shard.stats().total(), back.stats().total());
  // The restored shard keeps appending where the original left off.
  fill(back, 0, 1);
  EXPECT_EQ(back.tokens(0, 0), 555u);
}

TEST_F(Snapshot, RefusesTruncatedCorruptAndMismatchedFiles) {
  const ShardConfig c = config_for("int:bits=3");
  KVShard shard(c, nullptr);
  fill(shard, 300, 2);
  shard.save_snapshot(path);
  const std::vector<uint8_t> good = read_file(path);
  auto expect_refused = [&](const std::vector<uint8_t>& bytes, const ShardConfig& cfg, const std::string& words) {
    write_file_atomically(path, bytes);
    try {
      KVShard::load_snapshot(path, cfg, nullptr);
      FAIL() << "accepted a bad snapshot (" << words << ")";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(words), std::string::npos) << e.what();
    }
  };
  for (size_t cut : {size_t{0}, size_t{5}, size_t{40}, good.size() / 2, good.size() - 1})
    expect_refused(std::vector<uint8_t>(good.begin(), good.begin() + cut), c, cut < 12 ? "not a RingKV snapshot" : "snapshot");
  std::vector<uint8_t> flipped = good;
  flipped[good.size() / 3] ^= 0x10;
  expect_refused(flipped, c, "checksum mismatch");
  std::vector<uint8_t> version = good;
  version[8] = 9;
  expect_refused(version, c, "format version 9");
  expect_refused(good, config_for("int:bits=2"), "written with KV codec 'int:bits=3'");
  expect_refused(good, config_for("int:bits=3", 64, 16), "page size 32");
  ShardConfig other_rope = c;
  other_rope.rope = RopeTable::plain(64, 500000.0);
  expect_refused(good, other_rope, "RoPE");
}

TEST_F(Snapshot, RefusesForeignCodebooks) {
  const ShardConfig c = config_for("cq:channels=4,bits=4");
  const Calibration cal = calibration_for(c);
  KVShard shard(c, &cal);
  fill(shard, 100, 2);
  shard.save_snapshot(path);
  ShardConfig c2 = c;
  Calibration other;
  {
    const std::vector<float> rows = test::structured_rows(800, 64, 99);
    const std::vector<int> pos = test::iota_positions(800);
    for (int l = 0; l < 2; ++l)
      for (int h = 0; h < 2; ++h)
        for (Role r : {Role::Key, Role::Value})
          learn_codec_tables(c.spec.key, r, {64, 32, l, h, &other}, c.rope, {rows.data(), pos.data(), nullptr, 800}, other);
  }
  EXPECT_THROW(KVShard::load_snapshot(path, c2, &other), Error);
}

}  // namespace
}  // namespace ringkv
