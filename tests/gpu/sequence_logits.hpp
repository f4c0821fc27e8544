#pragma once
// The logits a sequence gives for a token list, and how two such runs compare.
#include <algorithm>
#include <span>
#include <vector>

#include "runtime/token_sequence.hpp"

namespace ringkv::test {

// A prefill of the first `prefill` tokens in chunks, then one decode step per remaining token: rows
// [tokens][vocab].
inline std::vector<float> sequence_logits(TokenSequence& sequence, std::span<const int32_t> tokens, size_t prefill,
                                          int chunk) {
  std::vector<float> all, step;
  sequence.prefill(tokens.first(prefill), chunk, all, true);
  for (size_t t = prefill; t < tokens.size(); ++t) {
    sequence.decode(tokens[t], step);
    all.insert(all.end(), step.begin(), step.end());
  }
  return all;
}

// Rows [rows][vocab] of two runs: at how many rows their largest logit is the same token.
inline size_t same_greedy_tokens(const std::vector<float>& a, const std::vector<float>& b, size_t vocab) {
  size_t same = 0;
  for (size_t t = 0; t < a.size() / vocab; ++t) {
    const float* x = a.data() + t * vocab;
    const float* y = b.data() + t * vocab;
    same += std::max_element(x, x + vocab) - x == std::max_element(y, y + vocab) - y;
  }
  return same;
}

}  // namespace ringkv::test
