#include "runtime/sequence_layout.hpp"

#include <algorithm>

#include "kernels/error.hpp"
#include "kvstore/binary_io.hpp"

namespace ringkv {

namespace {
int ceil_div(long long a, long long b) { return static_cast<int>((a + b - 1) / b); }
}  // namespace

SequenceLayout::SequenceLayout(int ranks, int page_size) : ranks_(ranks), page_size_(page_size), held_(ranks, 0) {
  RINGKV_REQUIRE(ranks > 0 && page_size > 0, "a sequence layout needs ranks and a page size");
}

void SequenceLayout::pass_page_on() {
  int best = (owner_ + 1) % ranks_;
  for (int i = 2; i <= ranks_; ++i) {
    const int r = (owner_ + i) % ranks_;
    if (held_[r] < held_[best]) best = r;
  }
  owner_ = best;
}

std::vector<std::vector<TokenRun>> SequenceLayout::plan_segment(int n) const {
  RINGKV_REQUIRE(n > 0, "a prefill segment needs tokens");
  const int end = length_ + n, first_page = length_ / page_size_, pages = ceil_div(end, page_size_) - first_page;
  const int chunks = 2 * ranks_;
  // Chunk c: pages [ceil(c K / 2P), ceil((c+1) K / 2P)) of the segment's K pages, as tokens.
  std::vector<TokenRun> chunk(chunks);
  for (int c = 0; c < chunks; ++c) {
    const int page_begin = first_page + ceil_div(static_cast<long long>(c) * pages, chunks);
    const int page_end = first_page + ceil_div(static_cast<long long>(c + 1) * pages, chunks);
    const int from = std::max(length_, page_begin * page_size_);
    if (page_begin < page_end) chunk[c] = {from, std::min(end, page_end * page_size_) - from};
  }
  // Pair p: chunks p and 2P-1-p (zigzag: causal work is balanced). The largest pairs go to the
  // ranks holding the fewest tokens (ties: in rank order from the open page's owner), except that
  // the open page stays with its owner, who then takes pair 0 (chunk 0 never empty).
  std::vector<int> pairs(ranks_), candidates(ranks_);
  for (int p = 0; p < ranks_; ++p) pairs[p] = p, candidates[p] = (owner_ + p) % ranks_;
  auto size = [&](int p) { return chunk[p].tokens + chunk[chunks - 1 - p].tokens; };
  const bool continues_open_page = length_ % page_size_ != 0;
  const int fixed = continues_open_page ? 1 : 0;  // pair 0 to the owner, first among the candidates
  std::stable_sort(pairs.begin() + fixed, pairs.end(), [&](int a, int b) { return size(a) > size(b); });
  std::stable_sort(candidates.begin() + fixed, candidates.end(), [&](int a, int b) { return held_[a] < held_[b]; });
  std::vector<std::vector<TokenRun>> runs(ranks_);
  for (int i = 0; i < ranks_; ++i)
    for (int c : {pairs[i], chunks - 1 - pairs[i]}) {
      const TokenRun& run = chunk[c];
      if (run.tokens == 0) continue;
      std::vector<TokenRun>& mine = runs[candidates[i]];
      if (!mine.empty() && mine.back().first_position + mine.back().tokens == run.first_position)
        mine.back().tokens += run.tokens;  // chunks P-1 and P meet on one rank
      else
        mine.push_back(run);
    }
  return runs;
}

int SequenceLayout::next_segment(size_t remaining, size_t segment) const {
  if (remaining <= segment) return static_cast<int>(remaining);
  const size_t start = static_cast<size_t>(length_), page = static_cast<size_t>(page_size_);
  size_t aligned = (start + segment) / page * page;
  if (aligned <= start) aligned = (start / page + 1) * page;  // segments shorter than a page
  return static_cast<int>(std::min(remaining, aligned - start));
}

void SequenceLayout::add_segment(int n) {
  const std::vector<std::vector<TokenRun>> runs = plan_segment(n);
  for (int r = 0; r < ranks_; ++r)
    for (const TokenRun& run : runs[r]) {
      held_[r] += run.tokens;
      if (run.first_position + run.tokens == length_ + n) owner_ = r;
    }
  length_ += n;
  if (length_ % page_size_ == 0) pass_page_on();
}

void SequenceLayout::add_decoded_token() {
  ++held_[owner_];
  if (++length_ % page_size_ == 0) pass_page_on();
}

std::vector<uint8_t> SequenceLayout::to_bytes() const {
  BinaryWriter w;
  for (int v : {ranks_, page_size_, length_, owner_}) w.put<int32_t>(v);
  for (long long h : held_) w.put<int64_t>(h);
  return w.bytes();
}

SequenceLayout SequenceLayout::from_bytes(std::span<const uint8_t> bytes, int ranks, int page_size, const std::string& source) {
  BinaryReader r(bytes.data(), bytes.size(), source);
  const int saved_ranks = r.get<int32_t>(), saved_page = r.get<int32_t>();
  RINGKV_REQUIRE(saved_ranks == ranks && saved_page == page_size,
                 source + " was saved by " + std::to_string(saved_ranks) + " rank(s) with page size " +
                     std::to_string(saved_page) + "; this job has " + std::to_string(ranks) + " rank(s) and page size " +
                     std::to_string(page_size) + " (load it with the same -np and --page-size)");
  SequenceLayout layout(ranks, page_size);
  layout.length_ = r.get<int32_t>();
  layout.owner_ = r.get<int32_t>();
  long long total = 0;
  for (long long& h : layout.held_) total += (h = r.get<int64_t>());
  RINGKV_REQUIRE(layout.length_ >= 0 && layout.owner_ >= 0 && layout.owner_ < ranks && total == layout.length_ &&
                     r.remaining() == 0,
                 source + " holds an inconsistent sequence layout");
  return layout;
}

}  // namespace ringkv
