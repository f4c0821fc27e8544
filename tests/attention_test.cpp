// Attention read directly from compressed pages equals attention over the decoded values, and
// partial states merge exactly in any order.
#include <gtest/gtest.h>

#include <algorithm>
#include <numeric>
#include <random>

#include "kernels/attention_state.hpp"
#include "kvstore/partial_attention.hpp"
#include "test_util.hpp"

namespace ringkv {
namespace {

class PagedAttention : public ::testing::TestWithParam<std::tuple<std::string, int>> {};

TEST_P(PagedAttention, EqualsAttentionOverDecodedPages) {
  const auto& [spec_text, head_dim] = GetParam();
  const KVSpec spec = KVSpec::parse(spec_text);
  const int page = 48, tokens = 5000, n_queries = 3;  // 104 full pages and a partial one
  const RopeTable rope = RopeTable::plain(head_dim, 10000.0);
  Calibration cal;
  CodecContext ctx{head_dim, page, 0, 0, &cal};
  const std::vector<float> train = test::structured_rows(1200, head_dim, 1);
  const std::vector<int> train_pos = test::iota_positions(1200);
  const CalibrationSamples samples{train.data(), train_pos.data(), nullptr, 1200};
  learn_codec_tables(spec.key, Role::Key, ctx, rope, samples, cal);
  learn_codec_tables(spec.value, Role::Value, ctx, rope, samples, cal);
  auto kc = make_codec(spec.key, Role::Key, ctx);
  auto vc = make_codec(spec.value, Role::Value, ctx);

  std::vector<float> keys = test::structured_rows(tokens, head_dim, 2), values = test::structured_rows(tokens, head_dim, 3);
  const int first = 777;
  if (!kc->stores_pre_rope_keys()) apply_rope_rows(keys.data(), tokens, first, rope);
  std::vector<std::vector<uint8_t>> kb, vb;
  std::vector<PageView> kp, vp;
  for (int t = 0; t < tokens; t += page) {
    const int n = std::min(page, tokens - t);
    kb.emplace_back(kc->encoded_bytes(n, first + t));
    vb.emplace_back(vc->encoded_bytes(n, first + t));
    kc->encode(keys.data() + static_cast<size_t>(t) * head_dim, n, first + t, kb.back().data());
    vc->encode(values.data() + static_cast<size_t>(t) * head_dim, n, first + t, vb.back().data());
  }
  for (size_t i = 0; i < kb.size(); ++i) {
    const int t = static_cast<int>(i) * page, n = std::min(page, tokens - t);
    kp.push_back({kb[i].data(), n, first + t});
    vp.push_back({vb[i].data(), n, first + t});
  }
  // Oracle: decode everything, rotate pre-RoPE keys, plain attention in double.
  std::vector<float> dk, dv;
  for (size_t i = 0; i < kp.size(); ++i) {
    std::vector<float> k = kc->decode_page(kp[i]), v = vc->decode_page(vp[i]);
    if (kc->stores_pre_rope_keys()) apply_rope_rows(k.data(), kp[i].tokens, kp[i].first_position, rope);
    dk.insert(dk.end(), k.begin(), k.end());
    dv.insert(dv.end(), v.begin(), v.end());
  }
  const std::vector<float> queries = test::gaussian(static_cast<size_t>(n_queries) * head_dim, 4, 0.3f);
  const float scale = 1.0f / std::sqrt(static_cast<float>(head_dim));
  const AttentionState want = reference_attention(queries, n_queries, dk, dv, tokens, head_dim, scale);
  const AttentionState got = partial_attention({kc.get(), vc.get(), kp, vp}, queries.data(), n_queries, rope, scale);
  EXPECT_LT(test::relative_error(got.out.data(), want.out.data(), want.out.size()), 2e-5) << spec_text;
  for (int q = 0; q < n_queries; ++q) EXPECT_NEAR(got.lse[q], want.lse[q], 1e-4 * std::fabs(want.lse[q]) + 1e-4);
}

INSTANTIATE_TEST_SUITE_P(AllCodecs, PagedAttention,
                         ::testing::Combine(::testing::Values("bf16", "fp16", "int:bits=2,group=32", "int:bits=4|int:bits=2",
                                                              "int:bits=3,group=20|int:bits=1,group=40", "int:bits=8|int:bits=4,group=7",
                                                              "kvquant:bits=3,outliers=0.01,sink=2,qnorm=1",
                                                              "kvquant:bits=2,prerope=0,nuq=0", "cq:channels=4,bits=6",
                                                              "cq:channels=8,bits=8|cq:channels=2,bits=4",
                                                              "rvq:depth=3,codes=32,group=16"),
                                            ::testing::Values(64, 96, 128)));

TEST(AttentionState, MergingInAnyOrderEqualsTheWhole) {
  const int d = 40, tokens = 301, nq = 2;
  const std::vector<float> k = test::gaussian(static_cast<size_t>(tokens) * d, 1), v = test::gaussian(static_cast<size_t>(tokens) * d, 2);
  const std::vector<float> q = test::gaussian(static_cast<size_t>(nq) * d, 3);
  const AttentionState whole = reference_attention(q, nq, k, v, tokens, d, 0.3f);
  // Split into uneven pieces (one empty), merge them in shuffled orders.
  const std::vector<int> cuts{0, 17, 17, 120, 250, 301};
  std::vector<AttentionState> parts;
  for (size_t i = 0; i + 1 < cuts.size(); ++i) {
    const size_t a = static_cast<size_t>(cuts[i]) * d, b = static_cast<size_t>(cuts[i + 1]) * d;
    parts.push_back(reference_attention(q, nq, std::span(k).subspan(a, b - a), std::span(v).subspan(a, b - a),
                                        cuts[i + 1] - cuts[i], d, 0.3f));
  }
  std::vector<int> order(parts.size());
  std::iota(order.begin(), order.end(), 0);
  std::mt19937 rng(5);
  for (int trial = 0; trial < 6; ++trial) {
    std::shuffle(order.begin(), order.end(), rng);
    AttentionState merged(nq, d);
    for (int i : order) merge_state(merged, parts[i]);
    EXPECT_LT(test::relative_error(merged.out.data(), whole.out.data(), whole.out.size()), 1e-6);
    for (int i = 0; i < nq; ++i) EXPECT_NEAR(merged.lse[i], whole.lse[i], 1e-5);
  }
  // The raw-array twin agrees with the object merge.
  std::vector<float> outs, lses;
  for (const auto& p : parts) {
    outs.insert(outs.end(), p.out.begin(), p.out.end());
    lses.insert(lses.end(), p.lse.begin(), p.lse.end());
  }
  std::vector<float> mo(static_cast<size_t>(nq) * d, NAN), ml(nq, NAN);
  merge_states_cpu(static_cast<int>(parts.size()), nq, d, outs.data(), lses.data(), mo.data(), ml.data());
  EXPECT_LT(test::relative_error(mo.data(), whole.out.data(), whole.out.size()), 1e-6);
}

TEST(Rope, InverseUndoesRotationAtLargePositions) {
  const RopeTable rope = RopeTable::plain(96, 500000.0);
  std::vector<float> v = test::gaussian(96, 8), w = v;
  apply_rope(w.data(), 9'999'999, rope);
  apply_inverse_rope(w.data(), 9'999'999, rope);
  EXPECT_LT(test::relative_error(w.data(), v.data(), v.size()), 1e-6);
  // Relative positions: q(m).k(n) depends on m - n only.
  std::vector<float> q = test::gaussian(96, 9), k = test::gaussian(96, 10);
  auto dot_at = [&](int m, int n) {
    std::vector<float> a = q, b = k;
    apply_rope(a.data(), m, rope);
    apply_rope(b.data(), n, rope);
    double s = 0;
    for (int i = 0; i < 96; ++i) s += a[i] * b[i];
    return s;
  };
  EXPECT_NEAR(dot_at(100, 40), dot_at(5060, 5000), 1e-3);
  // Rotating a run of rows (angle stepping) equals rotating each row at its own position.
  std::vector<float> rows = test::gaussian(300 * 96, 11), each = rows;
  apply_rope_rows(rows.data(), 300, 9'999'000, rope);
  for (int r = 0; r < 300; ++r) apply_rope(each.data() + r * 96, 9'999'000 + r, rope);
  EXPECT_LT(test::relative_error(rows.data(), each.data(), rows.size()), 1e-6);
}

}  // namespace
}  // namespace ringkv
