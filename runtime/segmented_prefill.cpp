#include "runtime/segmented_prefill.hpp"

#include <algorithm>

#include "kernels/error.hpp"

namespace ringkv {

namespace {
std::span<const uint8_t> as_bytes(const std::vector<float>& v) {
  return {reinterpret_cast<const uint8_t*>(v.data()), v.size() * sizeof(float)};
}

std::vector<float> as_floats(const std::vector<uint8_t>& bytes) {
  std::vector<float> v(bytes.size() / sizeof(float));
  std::copy_n(bytes.data(), v.size() * sizeof(float), reinterpret_cast<uint8_t*>(v.data()));  // empty allowed
  return v;
}
}  // namespace

void prefill_in_segments(SequenceLayout& layout, int rank, Communicator* comm, std::span<const int32_t> tokens,
                         int chunk_tokens, size_t vocab, bool all_logits, std::vector<float>& logits,
                         const SegmentRunner& run_mine) {
  RINGKV_REQUIRE(chunk_tokens > 0, "prefill chunk size must be positive");
  RINGKV_REQUIRE(!tokens.empty(), "prefill needs at least one token");
  const int ranks = layout.ranks();
  const size_t segment = static_cast<size_t>(chunk_tokens) * ranks;
  logits.clear();
  std::vector<float> mine;
  for (size_t begin = 0; begin < tokens.size();) {
    const int first = layout.length();
    const int n = layout.next_segment(tokens.size() - begin, segment);
    const bool last_segment = begin + n == tokens.size();
    const std::vector<std::vector<TokenRun>> plan = layout.plan_segment(n);
    std::vector<int32_t> my_tokens;
    for (const TokenRun& run : plan[rank])
      for (int i = 0; i < run.tokens; ++i) my_tokens.push_back(tokens[begin + run.first_position - first + i]);
    run_mine(plan, my_tokens, mine);

    if (all_logits) {
      // Every rank's rows, placed by position.
      const size_t at = logits.size();
      logits.resize(at + static_cast<size_t>(n) * vocab);
      const auto gathered = ranks > 1 ? comm->all_gather_bytes(as_bytes(mine), "prefill: gather logits")
                                      : std::vector<std::vector<uint8_t>>{};
      for (int r = 0; r < ranks; ++r) {
        const std::vector<float> rows = ranks > 1 ? as_floats(gathered[r]) : mine;
        size_t row = 0;
        for (const TokenRun& run : plan[r])
          for (int i = 0; i < run.tokens; ++i, ++row)
            std::copy_n(rows.data() + row * vocab, vocab, logits.data() + at + (run.first_position - first + i) * vocab);
      }
    } else if (last_segment) {
      // The last token's rank sends its logits to all.
      const int end = first + n;
      int holder = 0;
      for (int r = 0; r < ranks; ++r)
        if (!plan[r].empty() && plan[r].back().first_position + plan[r].back().tokens == end) holder = r;
      if (ranks > 1) {
        const std::span<const uint8_t> view = as_bytes(mine);
        std::vector<uint8_t> bytes(view.begin(), view.end());
        comm->broadcast_bytes(bytes, holder, "prefill: share the last token's logits");
        mine = as_floats(bytes);
      }
      logits = mine;
    }
    layout.add_segment(n);
    begin += static_cast<size_t>(n);
  }
}

}  // namespace ringkv
