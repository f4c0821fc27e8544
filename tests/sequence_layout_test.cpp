// How a sequence's pages are spread over ranks: zigzag chunks of whole pages, the open page kept
// by its rank, decode pages taken in turn.
#include <gtest/gtest.h>

#include <set>

#include "runtime/sequence_layout.hpp"

namespace ringkv {
namespace {

// Every position of the segment planned exactly once, by runs of whole pages (edges aside).
void expect_covers(const std::vector<std::vector<TokenRun>>& plan, int from, int n, int page) {
  std::set<int> seen;
  for (const auto& runs : plan)
    for (const TokenRun& run : runs) {
      EXPECT_TRUE(run.first_position == from || run.first_position % page == 0) << run.first_position;
      EXPECT_TRUE(run.first_position + run.tokens == from + n || (run.first_position + run.tokens) % page == 0);
      for (int i = 0; i < run.tokens; ++i) EXPECT_TRUE(seen.insert(run.first_position + i).second);
    }
  EXPECT_EQ(seen.size(), static_cast<size_t>(n));
  EXPECT_EQ(*seen.begin(), from);
}

TEST(SequenceLayout, ZigzagPairsChunksSoCausalWorkIsBalanced) {
  SequenceLayout layout(4, 16);
  const auto plan = layout.plan_segment(8 * 16);  // 8 pages, 8 chunks of one page
  ASSERT_EQ(plan.size(), 4u);
  for (int r = 0; r < 4; ++r) {
    ASSERT_EQ(plan[r].size(), r == 3 ? 1u : 2u) << "rank " << r;  // chunks 3 and 4 meet on rank 3
    EXPECT_EQ(plan[r][0].first_position, r * 16);
    if (r < 3) {
      EXPECT_EQ(plan[r][1].first_position, (7 - r) * 16);
    }
  }
  EXPECT_EQ(plan[3][0].tokens, 32);
  expect_covers(plan, 0, 128, 16);
}

TEST(SequenceLayout, TheOpenPageStaysWithItsRankAndDecodePagesRotate) {
  SequenceLayout layout(3, 16);
  layout.add_segment(100);  // ends mid-page 6: its owner keeps it
  const int owner = layout.decode_owner();
  const auto plan = SequenceLayout(3, 16).plan_segment(100);
  EXPECT_EQ(plan[owner].back().first_position + plan[owner].back().tokens, 100);
  for (int t = 100; t < 112; ++t) {
    EXPECT_EQ(layout.decode_owner(), owner);
    layout.add_decoded_token();
  }
  EXPECT_EQ(layout.decode_owner(), (owner + 1) % 3);  // page 7: the fewest tokens, the next rank on ties
  for (int n : {1, 5, 16, 40, 333}) {
    const int from = layout.length();
    const auto next = layout.plan_segment(n);
    expect_covers(next, from, n, 16);
    if (from % 16 != 0) {
      EXPECT_EQ(next[layout.decode_owner()].front().first_position, from);  // continues its own page
    }
    layout.add_segment(n);
  }
}

TEST(SequenceLayout, OneRankTakesEverythingInOneRun) {
  SequenceLayout layout(1, 32);
  layout.add_segment(50);
  const auto plan = layout.plan_segment(500);
  ASSERT_EQ(plan[0].size(), 1u);
  EXPECT_EQ(plan[0][0].first_position, 50);
  EXPECT_EQ(plan[0][0].tokens, 500);
}

}  // namespace
}  // namespace ringkv
