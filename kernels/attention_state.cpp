#include "kernels/attention_state.hpp"

#include <algorithm>
#include <cmath>
#include <limits>

#include "kernels/error.hpp"

namespace ringkv {

AttentionState::AttentionState(int queries, int dim)
    : n_queries(queries),
      head_dim(dim),
      out(static_cast<size_t>(queries) * dim, 0.0f),
      lse(queries, -std::numeric_limits<float>::infinity()) {}

namespace {
// Combines one query's (out, lse) pair into the accumulator pair.
void merge_one(float* acc_out, float& acc_lse, const float* out, float lse, int dim) {
  if (lse == -std::numeric_limits<float>::infinity()) return;
  if (acc_lse == -std::numeric_limits<float>::infinity()) {
    std::copy(out, out + dim, acc_out);
    acc_lse = lse;
    return;
  }
  const float m = std::max(acc_lse, lse);
  const float wa = std::exp(acc_lse - m), wb = std::exp(lse - m);
  const float inv = 1.0f / (wa + wb);
  for (int i = 0; i < dim; ++i) acc_out[i] = (acc_out[i] * wa + out[i] * wb) * inv;
  acc_lse = m + std::log(wa + wb);
}
}  // namespace

void merge_state(AttentionState& into, const AttentionState& other) {
  RINGKV_REQUIRE(into.n_queries == other.n_queries && into.head_dim == other.head_dim,
                 "merge_state: states differ in shape");
  for (int q = 0; q < into.n_queries; ++q)
    merge_one(&into.out[static_cast<size_t>(q) * into.head_dim], into.lse[q],
              &other.out[static_cast<size_t>(q) * other.head_dim], other.lse[q], into.head_dim);
}

void merge_states_cpu(int n_states, int n_queries, int head_dim, const float* outs, const float* lses,
                      float* merged_out, float* merged_lse) {
  for (int q = 0; q < n_queries; ++q) {
    float* acc = merged_out + static_cast<size_t>(q) * head_dim;
    float acc_lse = -std::numeric_limits<float>::infinity();
    std::fill(acc, acc + head_dim, 0.0f);
    for (int s = 0; s < n_states; ++s) {
      const size_t row = static_cast<size_t>(s) * n_queries + q;
      merge_one(acc, acc_lse, outs + row * head_dim, lses[row], head_dim);
    }
    merged_lse[q] = acc_lse;
  }
}

AttentionState reference_attention(std::span<const float> queries, int n_queries, std::span<const float> keys,
                                   std::span<const float> values, int tokens, int head_dim, float scale) {
  AttentionState state(n_queries, head_dim);
  if (tokens == 0) return state;
  std::vector<double> scores(tokens);
  for (int q = 0; q < n_queries; ++q) {
    const float* qv = &queries[static_cast<size_t>(q) * head_dim];
    double m = -std::numeric_limits<double>::infinity();
    for (int t = 0; t < tokens; ++t) {
      double s = 0;
      for (int c = 0; c < head_dim; ++c) s += static_cast<double>(qv[c]) * keys[static_cast<size_t>(t) * head_dim + c];
      scores[t] = s * scale;
      m = std::max(m, scores[t]);
    }
    double denom = 0;
    std::vector<double> acc(head_dim, 0.0);
    for (int t = 0; t < tokens; ++t) {
      const double p = std::exp(scores[t] - m);
      denom += p;
      for (int c = 0; c < head_dim; ++c) acc[c] += p * values[static_cast<size_t>(t) * head_dim + c];
    }
    for (int c = 0; c < head_dim; ++c) state.out[static_cast<size_t>(q) * head_dim + c] = static_cast<float>(acc[c] / denom);
    state.lse[q] = static_cast<float>(m + std::log(denom));
  }
  return state;
}

}  // namespace ringkv
