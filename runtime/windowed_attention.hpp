#pragma once
// Causal attention of a run of queries over rows of keys and values, each query seeing only the
// rows whose positions fall in its own window [lo, hi). Prefill splits what a query sees into
// windows (sealed pages below its own page, its own page in tail form, pages that arrive from
// other ranks) and merges the partial states, so the result does not depend on how the cache is
// split over chunks or ranks.
#include <vector>

#include "kernels/attention_state.hpp"
#include "kvstore/kv_shard.hpp"

namespace ringkv {

struct QueryWindows {
  const float* queries = nullptr;  // post-RoPE [tokens][group][head_dim]
  int tokens = 0;
  int group = 1;                   // query heads per token sharing the rows (GQA)
  const int* lo = nullptr;         // per token: the first position it sees here
  const int* hi = nullptr;         // per token: one past the last position it sees here
};

// Partial attention states (out, lse) of many queries, kept in double: windows merge in an order
// that depends on how many ranks hold the cache, and double keeps that order from showing in the
// float result, so that P ranks give the keys and values of one rank bit for bit (almost surely),
// and a quantized cache sees the same inputs.
struct PreciseStates {
  PreciseStates(int queries, int head_dim);
  int queries, head_dim;
  std::vector<double> out;  // [queries][head_dim]
  std::vector<double> lse;  // [queries]; -inf over no keys
};

// Merges into `states` (tokens * group queries) the attention of each query over the rows in its
// window; scores are scale * q.k.
void attend_windows(const KVRows& rows, const QueryWindows& q, float scale, PreciseStates& states);

// received[position] += the attention each row in a window gets, given each query's final lse
// (over everything it sees); received must cover the rows' positions.
void add_received_attention(const KVRows& rows, const QueryWindows& q, float scale, const std::vector<double>& final_lse,
                            std::vector<double>& received);

}  // namespace ringkv
