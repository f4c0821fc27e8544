#include "runtime/sequence_attention.hpp"

#include <algorithm>
#include <chrono>
#include <climits>
#include <optional>

#include "kernels/error.hpp"
#include "runtime/windowed_attention.hpp"

namespace ringkv {

namespace {
// Decoded rows attended at a time: memory for cached keys and values stays bounded at any context.
constexpr size_t kRowsPerBatch = 16384;

// Rows [n][heads][head_dim] -> the `count` adjacent heads from `head` of each row, [n][count][head_dim].
std::vector<float> gather_heads(const float* x, int n, int heads, int head_dim, int head, int count) {
  std::vector<float> out(static_cast<size_t>(n) * count * head_dim);
  for (int i = 0; i < n; ++i)
    std::copy_n(x + (static_cast<size_t>(i) * heads + head) * head_dim, static_cast<size_t>(count) * head_dim,
                out.data() + static_cast<size_t>(i) * count * head_dim);
  return out;
}

// Where each query looks: below its own page (sealed pages, on any rank) and its own page so far
// (tail form, on this rank).
struct Windows {
  std::vector<int> sealed_lo, sealed_hi, own_lo, own_hi;
  QueryWindows sealed(const float* q, int group) const { return {q, size(), group, sealed_lo.data(), sealed_hi.data()}; }
  QueryWindows own(const float* q, int group) const { return {q, size(), group, own_lo.data(), own_hi.data()}; }
  int size() const { return static_cast<int>(sealed_lo.size()); }
  int sealed_below() const { return sealed_hi.empty() ? INT_MIN : *std::max_element(sealed_hi.begin(), sealed_hi.end()); }
  // Position p of a run whose open page began at local_first: the cache right after p was
  // appended has p's page open (tail form) unless p filled it.
  void add(int p, int local_first, int page) {
    int page_start = local_first + (p - local_first) / page * page;
    if (p - page_start + 1 == page) page_start = p + 1;
    sealed_lo.push_back(INT_MIN);
    sealed_hi.push_back(page_start);
    own_lo.push_back(page_start);
    own_hi.push_back(p + 1);
  }
};
}  // namespace

SequenceAttention::SequenceAttention(KVShard& kv, Communicator* comm, std::vector<TokenRun> runs, int decode_owner)
    : kv_(kv), comm_(comm), runs_(std::move(runs)), decode_owner_(decode_owner) {}

SequenceAttention SequenceAttention::prefill(KVShard& kv, Communicator* comm, std::vector<TokenRun> runs) {
  for (size_t i = 1; i < runs.size(); ++i)
    RINGKV_REQUIRE(runs[i].first_position >= runs[i - 1].first_position + runs[i - 1].tokens, "prefill runs must ascend");
  return SequenceAttention(kv, comm, std::move(runs), -1);
}

SequenceAttention SequenceAttention::decode(KVShard& kv, Communicator* comm, int position, int owner) {
  RINGKV_REQUIRE(owner >= 0 && owner < (comm ? comm->size() : 1), "decode owner is not a rank of the job");
  return SequenceAttention(kv, comm, {{position, 1}}, owner);
}

int SequenceAttention::tokens() const {
  int n = 0;
  for (const TokenRun& r : runs_) n += r.tokens;
  return n;
}

void SequenceAttention::run(int layer, const AttentionShape& shape, const float* q, const float* k, const float* v,
                            float* out, std::vector<std::vector<double>>* received) {
  RINGKV_REQUIRE(shape.heads % shape.kv_heads == 0 && shape.head_dim == kv_.config().head_dim,
                 "attention shape does not match the KV shard");
  if (decode_owner_ >= 0 && !received)
    run_decode(layer, shape, q, k, v, out);
  else
    run_prefill(layer, shape, q, k, v, out, received);
}

void SequenceAttention::run_prefill(int layer, const AttentionShape& shape, const float* q, const float* k,
                                    const float* v, float* out, std::vector<std::vector<double>>* received) {
  RINGKV_REQUIRE(!received || ranks() == 1, "the attention positions receive is collected on one rank only");
  RINGKV_REQUIRE(decode_owner_ < 0 || ranks() == 1, "a decode step on several ranks merges states; it has no prefill form");
  const int n = tokens(), d = shape.head_dim, group = shape.heads / shape.kv_heads, page = kv_.config().page_size;
  std::vector<PreciseStates> states(shape.kv_heads, PreciseStates(n * group, d));
  std::vector<std::vector<float>> queries(shape.kv_heads);
  std::vector<KVRows> own(shape.kv_heads);
  Windows windows;
  for (int kh = 0; kh < shape.kv_heads; ++kh) {
    const std::vector<float> keys = gather_heads(k, n, shape.kv_heads, d, kh, 1);
    const std::vector<float> values = gather_heads(v, n, shape.kv_heads, d, kh, 1);
    queries[kh] = gather_heads(q, n, shape.heads, d, kh * group, group);  // the group's query heads are adjacent
    size_t offset = 0;
    for (const TokenRun& run : runs_) {
      KVRows tail = kv_.tail_rows(layer, kh);
      const bool continues = tail.size() > 0 && tail.positions.back() + 1 == run.first_position;
      if (continues) {
        own[kh].keys.insert(own[kh].keys.end(), tail.keys.begin(), tail.keys.end());
        own[kh].values.insert(own[kh].values.end(), tail.values.begin(), tail.values.end());
        own[kh].positions.insert(own[kh].positions.end(), tail.positions.begin(), tail.positions.end());
      }
      const float* run_keys = keys.data() + offset * d;
      const float* run_values = values.data() + offset * d;
      kv_.add_tail_form(layer, kh, run_keys, run_values, run.tokens, run.first_position, own[kh]);
      if (kh == 0)
        for (int i = 0; i < run.tokens; ++i)
          windows.add(run.first_position + i, continues ? tail.positions.front() : run.first_position, page);
      kv_.append(layer, kh, run_keys, run_values, run.tokens, run.first_position);
      offset += run.tokens;
    }
  }

  // This rank's pages start around the ring while its queries attend to its own shard.
  std::vector<uint8_t> sending;
  std::optional<RingTransfer> transfer;
  if (ranks() > 1) {
    sending = kv_.pack_sealed_pages(layer);
    transfer.emplace(comm_->start_ring_exchange(sending, "ring attention: pass sealed pages to the next rank"));
  }
  const int below = windows.sealed_below();  // no query here sees a page from this position on
  for (int kh = 0; kh < shape.kv_heads; ++kh) {
    const QueryWindows sealed = windows.sealed(queries[kh].data(), group), own_page = windows.own(queries[kh].data(), group);
    kv_.visit_rows(layer, kh, below, kRowsPerBatch, [&](const KVRows& rows) { attend_windows(rows, sealed, shape.scale, states[kh]); });
    attend_windows(own[kh], own_page, shape.scale, states[kh]);
    if (received) {  // a second pass, now that every query's lse is final
      std::vector<double>& r = (*received)[kh];
      const int span = runs_.empty() ? 0 : runs_.back().first_position + runs_.back().tokens;
      if (r.size() < static_cast<size_t>(span)) r.resize(span);
      kv_.visit_rows(layer, kh, below, kRowsPerBatch,
                     [&](const KVRows& rows) { add_received_attention(rows, sealed, shape.scale, states[kh].lse, r); });
      add_received_attention(own[kh], own_page, shape.scale, states[kh].lse, r);
    }
  }
  for (int step = 1; step < ranks(); ++step) {
    const auto waiting = std::chrono::steady_clock::now();
    std::vector<uint8_t> arrived = transfer->wait();
    ring_wait_seconds_ += std::chrono::duration<double>(std::chrono::steady_clock::now() - waiting).count();
    ring_bytes_sent_ += sending.size();
    sending = std::move(arrived);
    if (step + 1 < ranks())
      transfer.emplace(comm_->start_ring_exchange(sending, "ring attention: pass sealed pages to the next rank"));
    kv_.visit_packed_pages(layer, sending, below, kRowsPerBatch, [&](int kh, const KVRows& rows) {
      attend_windows(rows, windows.sealed(queries[kh].data(), group), shape.scale, states[kh]);
    });
  }

  for (int kh = 0; kh < shape.kv_heads; ++kh)
    for (int i = 0; i < n; ++i)
      std::copy_n(states[kh].out.data() + static_cast<size_t>(i) * group * d, static_cast<size_t>(group) * d,
                  out + (static_cast<size_t>(i) * shape.heads + static_cast<size_t>(kh) * group) * d);  // to float
}

void SequenceAttention::run_decode(int layer, const AttentionShape& shape, const float* q, const float* k,
                                   const float* v, float* out) {
  const int d = shape.head_dim, group = shape.heads / shape.kv_heads, position = runs_[0].first_position;
  const bool mine = (comm_ ? comm_->rank() : 0) == decode_owner_;
  // Per KV head: out [group][d] then lse [group]; the merged result overwrites it.
  std::vector<float> states(static_cast<size_t>(shape.kv_heads) * group * (d + 1));
  for (int kh = 0; kh < shape.kv_heads; ++kh) {
    if (mine) kv_.append(layer, kh, k + static_cast<size_t>(kh) * d, v + static_cast<size_t>(kh) * d, 1, position);
    const AttentionState st = kv_.attend(layer, kh, q + static_cast<size_t>(kh) * group * d, group, shape.scale);
    float* slot = states.data() + static_cast<size_t>(kh) * group * (d + 1);
    std::copy(st.out.begin(), st.out.end(), slot);
    std::copy(st.lse.begin(), st.lse.end(), slot + static_cast<size_t>(group) * d);
  }
  if (ranks() > 1) {
    const auto* bytes = reinterpret_cast<const uint8_t*>(states.data());
    const auto all = comm_->all_gather_bytes({bytes, states.size() * sizeof(float)}, "decode: gather partial attention states");
    const size_t per_head = static_cast<size_t>(group) * (d + 1);
    std::vector<float> outs(static_cast<size_t>(ranks()) * group * d), lses(static_cast<size_t>(ranks()) * group);
    for (int kh = 0; kh < shape.kv_heads; ++kh) {
      for (int r = 0; r < ranks(); ++r) {
        RINGKV_REQUIRE(all[r].size() == states.size() * sizeof(float), "decode: rank " + std::to_string(r) +
                                                                           " sent partial states of another shape");
        const float* theirs = reinterpret_cast<const float*>(all[r].data()) + kh * per_head;
        std::copy_n(theirs, static_cast<size_t>(group) * d, outs.data() + static_cast<size_t>(r) * group * d);
        std::copy_n(theirs + static_cast<size_t>(group) * d, group, lses.data() + static_cast<size_t>(r) * group);
      }
      float* slot = states.data() + kh * per_head;
      merge_states_cpu(ranks(), group, d, outs.data(), lses.data(), slot, slot + static_cast<size_t>(group) * d);
    }
  }
  for (int kh = 0; kh < shape.kv_heads; ++kh)
    std::copy_n(states.data() + static_cast<size_t>(kh) * group * (d + 1), static_cast<size_t>(group) * d,
                out + static_cast<size_t>(kh) * group * d);
}

}  // namespace ringkv
