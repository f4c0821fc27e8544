// The communicator and the codec analysis behind `ringkv analyze` (both start MPI).
#include <gtest/gtest.h>

#include "comm/communicator.hpp"
#include "kvstore/synthetic_kv.hpp"
#include "launch/analysis/codec_analysis.hpp"

namespace ringkv {
namespace {

TEST(Analysis, ErrorsOrderByBitsAndAccountingIsExact) {
  SyntheticKVOptions o;
  o.layers = 1, o.kv_heads = 2, o.head_dim = 64, o.tokens = 700;
  const KVDump eval = make_synthetic_kv(o);
  o.seed = 2;
  const KVDump cal = make_synthetic_kv(o);
  AnalysisOptions a;
  a.page_size = 64;
  a.specs = {"bf16", "int:bits=4", "int:bits=2", "kvquant:bits=2,outliers=0.02,sink=1,weights=attention"};
  const auto r = analyze_codecs(eval, cal, a, Communicator::world());
  ASSERT_EQ(r.size(), 4u);
  EXPECT_LT(r[0].attention_error, r[1].attention_error);
  EXPECT_LT(r[1].attention_error, r[2].attention_error);
  EXPECT_GT(r[0].topk_agreement, 0.95);
  // bf16: 10 sealed pages of 64 tokens (2 x 64 x 64 x 2 bytes + 2 headers of 8) and a 60-token tail.
  const double bytes = 10 * (2.0 * 64 * 64 * 2 + 16) + 60 * 64 * 4;
  EXPECT_DOUBLE_EQ(r[0].bits_per_element, bytes * 8 / (2.0 * 700 * 64));
  EXPECT_NEAR(r[2].projected_bits, 2.0 + 8 * (64 * 4 + 64 * 4 + 16) / (2.0 * 64 * 64), 1e-9);
}

TEST(Analysis, AttentionSensitivityFavoursAttendedTokens) {
  SyntheticKVOptions o;
  o.layers = 1, o.kv_heads = 1, o.tokens = 500;
  const KVDump d = make_synthetic_kv(o);
  const std::vector<float> w = attention_received(d, 0, 0);
  ASSERT_EQ(w.size(), 500u);
  double mean = 0;
  float top = 0, bottom = 1e9f;
  for (float x : w) mean += x / 500, top = std::max(top, x), bottom = std::min(bottom, x);
  EXPECT_NEAR(mean, 1.0, 0.5);  // mean 1 before the floor lifts the least attended tokens
  EXPECT_GE(bottom, 0.1f);
  EXPECT_GT(top, 10.0f);  // attention is peaked
}

}  // namespace
}  // namespace ringkv
