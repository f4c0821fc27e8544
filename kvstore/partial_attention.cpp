#include "kvstore/partial_attention.hpp"

#include <algorithm>
#include <cmath>
#include <limits>

#include "kernels/error.hpp"

namespace ringkv {

namespace {
// Tokens per parallel chunk: large enough to amortize lookup tables, small enough to balance threads.
constexpr size_t kChunkTokens = 4096;

AttentionState attend_chunk(const PagedKV& kv, size_t first_page, size_t end_page, const float* queries, int n_queries,
                            const RopeTable& rope, float scale) {
  const int d = kv.key_codec->head_dim();
  AttentionState state(n_queries, d);
  const auto keys = kv.keys.subspan(first_page, end_page - first_page);
  const auto values = kv.values.subspan(first_page, end_page - first_page);
  const size_t total = total_tokens(keys);
  if (total == 0) return state;
  std::vector<float> probs(static_cast<size_t>(n_queries) * total);
  kv.key_codec->key_scores(keys, queries, n_queries, rope, probs.data());
  std::vector<float> denom(n_queries);
  for (int q = 0; q < n_queries; ++q) {
    float* s = probs.data() + static_cast<size_t>(q) * total;
    float m = -std::numeric_limits<float>::infinity();
    for (size_t t = 0; t < total; ++t) m = std::max(m, s[t] *= scale);
    double sum = 0;
    for (size_t t = 0; t < total; ++t) sum += (s[t] = std::exp(s[t] - m));
    denom[q] = static_cast<float>(sum);
    state.lse[q] = m + static_cast<float>(std::log(sum));
  }
  kv.value_codec->accumulate_values(values, probs.data(), n_queries, state.out.data());
  for (int q = 0; q < n_queries; ++q)
    for (int c = 0; c < d; ++c) state.out[static_cast<size_t>(q) * d + c] /= denom[q];
  return state;
}
}  // namespace

AttentionState partial_attention(const PagedKV& kv, const float* queries, int n_queries, const RopeTable& rope,
                                 float scale) {
  RINGKV_REQUIRE(kv.key_codec && kv.value_codec && kv.keys.size() == kv.values.size(),
                 "partial_attention: key and value pages do not pair up");
  // Chunk boundaries on page boundaries.
  std::vector<size_t> bounds{0};
  size_t tokens = 0;
  for (size_t i = 0; i < kv.keys.size(); ++i) {
    tokens += kv.keys[i].tokens;
    if (tokens >= kChunkTokens || i + 1 == kv.keys.size()) {
      bounds.push_back(i + 1);
      tokens = 0;
    }
  }
  const int chunks = static_cast<int>(bounds.size()) - 1;
  std::vector<AttentionState> states(std::max(chunks, 0));
#pragma omp parallel for schedule(dynamic) if (chunks > 1)
  for (int c = 0; c < chunks; ++c) states[c] = attend_chunk(kv, bounds[c], bounds[c + 1], queries, n_queries, rope, scale);
  AttentionState merged(n_queries, kv.key_codec->head_dim());
  for (const AttentionState& s : states) merge_state(merged, s);
  return merged;
}

}  // namespace ringkv
