#pragma once
// A partial attention result over some subset of keys: the softmax-weighted average of values
// (out) and the log of the softmax denominator (lse). Two states over disjoint key sets merge
// exactly into the state over their union, in any order; this is what pages, ranks and ring steps
// combine.
#include <span>
#include <vector>

namespace ringkv {

struct AttentionState {
  int n_queries = 0;
  int head_dim = 0;
  std::vector<float> out;  // [n_queries][head_dim]
  std::vector<float> lse;  // [n_queries]; -inf for a state over no keys

  AttentionState() = default;
  AttentionState(int queries, int dim);
};

// Merges `other` into `into` (both over the same queries and head_dim).
void merge_state(AttentionState& into, const AttentionState& other);

// CPU twin of the merge kernel on raw arrays: states laid out as [n_states][n_queries][...].
void merge_states_cpu(int n_states, int n_queries, int head_dim, const float* outs, const float* lses,
                      float* merged_out, float* merged_lse);

// Reference attention over plain fp32 keys and values (row-major [tokens][head_dim]), used as the
// oracle in tests and analysis. Scores are scale * q.k.
AttentionState reference_attention(std::span<const float> queries, int n_queries, std::span<const float> keys,
                                   std::span<const float> values, int tokens, int head_dim, float scale);

}  // namespace ringkv
