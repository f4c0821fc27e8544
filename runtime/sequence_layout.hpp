#pragma once
// Which rank holds which pages of a sequence whose KV cache is spread over P ranks. Pages are
// aligned to multiples of page_size from position 0 and are never split between ranks, so every
// rank's shard holds exactly the pages a single-rank run would seal, and compressed results match.
#include <cstdint>
#include <span>
#include <string>
#include <vector>

namespace ringkv {

// Consecutive positions [first_position, first_position + tokens).
struct TokenRun {
  int first_position = 0;
  int tokens = 0;
};

class SequenceLayout {
 public:
  SequenceLayout(int ranks, int page_size);

  int ranks() const { return ranks_; }
  int page_size() const { return page_size_; }
  int length() const { return length_; }  // tokens in the sequence so far

  // A prefill segment of n tokens at the end of the sequence: its pages are split into 2P chunks
  // of whole pages (a partly filled first page counts as one), and chunks c and 2P-1-c go to the
  // same rank (zigzag: causal work is balanced); the largest pairs go to the ranks that hold the
  // fewest tokens, so shards stay level, except that a partly filled open page stays with its rank,
  // which takes chunks 0 and 2P-1. Per rank, its runs in ascending order (possibly none).
  std::vector<std::vector<TokenRun>> plan_segment(int n) const;
  // The next segment's length when `remaining` tokens are to come in segments of about `segment`:
  // it ends on a page boundary unless it is the last, so that the open page then passes to the
  // least-filled rank and shards stay level.
  int next_segment(size_t remaining, size_t segment) const;
  void add_segment(int n);

  // Decode appends one token at a time to the rank that holds the open page; when a page fills,
  // the rank holding the fewest tokens takes the next page, so that shards stay level.
  int decode_owner() const { return owner_; }
  long long tokens_on(int rank) const { return held_[rank]; }
  void add_decoded_token();

  // The layout as bytes (saved with a sequence's shards) and back; from_bytes refuses bytes
  // written for another number of ranks or page size.
  std::vector<uint8_t> to_bytes() const;
  static SequenceLayout from_bytes(std::span<const uint8_t> bytes, int ranks, int page_size, const std::string& source);

 private:
  int ranks_, page_size_;
  int length_ = 0;
  int owner_ = 0;  // the rank that holds (or next starts) the page of position length_
  std::vector<long long> held_;  // tokens per rank

  // After a page filled: the rank with the fewest tokens, the first after the last owner on ties.
  void pass_page_on();
};

}  // namespace ringkv
