#include "runtime/sequence_layout.hpp"

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
  std::vector<std::vector<TokenRun>> runs(ranks_);
  for (int c = 0; c < chunks; ++c) {
    // Chunk c: pages [ceil(c K / 2P), ceil((c+1) K / 2P)); chunk 0 is never empty, so the open page stays put.
    const int page_begin = first_page + ceil_div(static_cast<long long>(c) * pages, chunks);
    const int page_end = first_page + ceil_div(static_cast<long long>(c + 1) * pages, chunks);
    if (page_begin == page_end) continue;
    const int from = std::max(length_, page_begin * page_size_), to = std::min(end, page_end * page_size_);
    const int rank = (owner_ + (c < ranks_ ? c : chunks - 1 - c)) % ranks_;
    std::vector<TokenRun>& mine = runs[rank];
    if (!mine.empty() && mine.back().first_position + mine.back().tokens == from)
      mine.back().tokens += to - from;  // chunks P-1 and P meet on one rank
    else
      mine.push_back({from, to - from});
  }
  return runs;
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
