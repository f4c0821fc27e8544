#pragma once
// The prefill of one sequence spread over ranks, whatever runs each rank's part (CPU shards or
// GPUs): the tokens go in segments of chunk_tokens per rank, each segment's pages planned by the
// layout (zigzag chunks), and every rank ends with the same logits.
#include <functional>
#include <span>
#include <vector>

#include "comm/communicator.hpp"
#include "runtime/sequence_layout.hpp"

namespace ringkv {

// Runs this rank's tokens of a segment (at the positions of plan[rank], possibly none: the rank
// still takes part in the ring) and writes their logits rows into mine ([tokens][vocab] when all
// logits are asked for, else the last token's row).
using SegmentRunner = std::function<void(const std::vector<std::vector<TokenRun>>& plan, std::span<const int32_t> my_tokens,
                                         std::vector<float>& mine)>;

// logits: [tokens][vocab] in position order when all_logits, else [vocab] of the last token; the
// layout advances segment by segment. comm may be null with one rank.
void prefill_in_segments(SequenceLayout& layout, int rank, Communicator* comm, std::span<const int32_t> tokens,
                         int chunk_tokens, size_t vocab, bool all_logits, std::vector<float>& logits,
                         const SegmentRunner& run_mine);

}  // namespace ringkv
