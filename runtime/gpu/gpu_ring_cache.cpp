#include "runtime/gpu/gpu_ring_cache.hpp"

#include <algorithm>

#include "kernels/decode_attention_bf16_gpu.hpp"
#include "kernels/merge_states_gpu.hpp"
#include "kernels/prefill_attention_gpu.hpp"
#include "kernels/transformer_ops_gpu.hpp"
#include "runtime/gpu/gpu_weights.hpp"

namespace ringkv {

namespace {
size_t kv_row(const ModelConfig& c) { return static_cast<size_t>(c.kv_heads) * c.head_dim; }

int total(const std::vector<TokenRun>& runs) {
  int n = 0;
  for (const TokenRun& r : runs) n += r.tokens;
  return n;
}

// How many positions of the ascending runs lie below `position`: the shard's rows a query at
// `position` (or a run starting there) sees in full.
int rows_below(const std::vector<TokenRun>& runs, int position) {
  int n = 0;
  for (const TokenRun& r : runs) n += std::clamp(position - r.first_position, 0, r.tokens);
  return n;
}

void append_run(std::vector<TokenRun>& runs, TokenRun run) {
  if (!runs.empty() && runs.back().first_position + runs.back().tokens == run.first_position)
    runs.back().tokens += run.tokens;
  else if (run.tokens > 0)
    runs.push_back(run);
}

size_t decode_splits(const ModelConfig& c, size_t capacity) {
  return static_cast<size_t>(decode_attention_bf16_splits(static_cast<int>(std::min<size_t>(capacity, INT32_MAX)), c.kv_heads));
}
}  // namespace

size_t GpuRingCache::bytes_needed(const ModelConfig& c, size_t capacity, int max_step_tokens, int ranks) {
  const size_t shard = 2 * static_cast<size_t>(c.layers) * capacity * kv_row(c) * sizeof(uint16_t);
  const size_t ring = 4 * capacity * kv_row(c) * sizeof(uint16_t);
  const size_t per_query = static_cast<size_t>(c.heads) * (c.head_dim + 1) * sizeof(float);
  const size_t states = static_cast<size_t>(ranks + 1) * max_step_tokens * per_query;
  const size_t decode = (decode_splits(c, capacity) + ranks) * per_query;
  return shard + ring + states + decode;
}

GpuRingCache::GpuRingCache(const ModelConfig& c, size_t capacity, int max_step_tokens, NcclCommunicator& nccl)
    : config_(c), capacity_(capacity), max_step_tokens_(max_step_tokens), nccl_(nccl), rank_(nccl.rank()),
      ranks_(nccl.size()), held_(nccl.size()), plan_(nccl.size()) {
  for (int l = 0; l < c.layers; ++l) {
    keys_.emplace_back(capacity * kv_row(c));
    values_.emplace_back(capacity * kv_row(c));
  }
  for (int b = 0; b < 2; ++b) ring_keys_[b] = DeviceBuffer<uint16_t>(capacity * kv_row(c)), ring_values_[b] = DeviceBuffer<uint16_t>(capacity * kv_row(c));
  const size_t queries = static_cast<size_t>(ranks_ + 1) * max_step_tokens * c.heads;
  states_out_ = DeviceBuffer<float>(queries * c.head_dim), states_lse_ = DeviceBuffer<float>(queries);
  const size_t splits = decode_splits(c, capacity);
  split_out_ = DeviceBuffer<float>(splits * c.heads * c.head_dim), split_lse_ = DeviceBuffer<float>(splits * c.heads);
  gathered_out_ = DeviceBuffer<float>(static_cast<size_t>(ranks_) * c.heads * c.head_dim);
  gathered_lse_ = DeviceBuffer<float>(static_cast<size_t>(ranks_) * c.heads);
}

StorageStats GpuRingCache::storage() const {
  StorageStats st;
  st.tokens = static_cast<size_t>(config_.layers) * config_.kv_heads * total(held_[rank_]);
  st.tail = 2 * static_cast<size_t>(config_.layers) * total(held_[rank_]) * kv_row(config_) * sizeof(uint16_t);
  return st;
}

std::vector<TokenRun> GpuRingCache::shard_after_step(int r) const {
  std::vector<TokenRun> runs = held_[r];
  for (const TokenRun& run : plan_[r]) append_run(runs, run);
  return runs;
}

void GpuRingCache::make_room() {
  size_t largest = 0;
  for (int r = 0; r < ranks_; ++r) largest = std::max<size_t>(largest, static_cast<size_t>(total(shard_after_step(r))));
  if (largest <= capacity_) return;
  // Every rank sees the same shard sizes, so every rank grows its ring buffers alike.
  const size_t grown = std::max(largest, capacity_ + capacity_ / 4), row = kv_row(config_);
  require_gpu_memory(2 * (static_cast<size_t>(config_.layers) + 2) * (grown - capacity_) * row * sizeof(uint16_t),
                     "growing this rank's KV shard to " + std::to_string(grown) + " tokens");
  const size_t held = static_cast<size_t>(total(held_[rank_]));
  for (int l = 0; l < config_.layers; ++l)
    for (std::vector<DeviceBuffer<uint16_t>>* role : {&keys_, &values_}) {
      DeviceBuffer<uint16_t> bigger(grown * row);
      RINGKV_CHECK_CUDA(cudaMemcpy(bigger.data(), (*role)[l].data(), held * row * sizeof(uint16_t), cudaMemcpyDeviceToDevice));
      (*role)[l] = std::move(bigger);
    }
  for (int b = 0; b < 2; ++b) ring_keys_[b] = DeviceBuffer<uint16_t>(grown * row), ring_values_[b] = DeviceBuffer<uint16_t>(grown * row);
  // A longer shard takes more decode splits.
  const size_t splits = decode_splits(config_, grown);
  split_out_ = DeviceBuffer<float>(splits * config_.heads * config_.head_dim), split_lse_ = DeviceBuffer<float>(splits * config_.heads);
  capacity_ = grown;
}

void GpuRingCache::plan_prefill(std::vector<std::vector<TokenRun>> plan) {
  RINGKV_REQUIRE(static_cast<int>(plan.size()) == ranks_, "a prefill plan needs the runs of every rank");
  plan_ = std::move(plan);
  decode_owner_ = -1;
  make_room();
}

void GpuRingCache::plan_decode(int owner) {
  RINGKV_REQUIRE(owner >= 0 && owner < ranks_, "decode owner is not a rank of the job");
  for (auto& p : plan_) p.clear();
  plan_[owner] = {{length_, 1}};
  decode_owner_ = owner;
  make_room();
}

void GpuRingCache::attend(const GpuAttentionStep& step, cudaStream_t stream) {
  if (decode_owner_ >= 0) {
    RINGKV_REQUIRE(step.tokens == 1 && step.runs.size() == 1 && step.runs[0].first_position == length_,
                   "a decode step runs the token at the end of the sequence on every rank");
    attend_decode(step, stream);
  } else {
    RINGKV_REQUIRE(static_cast<int>(step.runs.size()) == static_cast<int>(plan_[rank_].size()) &&
                       step.tokens == total(plan_[rank_]) && step.tokens <= max_step_tokens_,
                   "a prefill step runs this rank's tokens of the planned segment");
    attend_prefill(step, stream);
  }
}

void GpuRingCache::attend_prefill(const GpuAttentionStep& step, cudaStream_t stream) {
  const int l = step.layer, n = step.tokens, heads = step.heads, d = step.head_dim;
  const size_t row = kv_row(config_), row_bytes = row * sizeof(uint16_t);
  const size_t held = static_cast<size_t>(total(held_[rank_]));
  to_bf16_gpu(step.keys, n * row, keys_[l].data() + held * row, stream);
  to_bf16_gpu(step.values, n * row, values_[l].data() + held * row, stream);
  // At ring step s this rank sends the shard of rank - s + 1 (its own first) and receives rank - s's.
  auto source = [&](int s) { return (rank_ - s + ranks_) % ranks_; };
  auto exchange = [&](int s, const uint16_t* keys, const uint16_t* values) {
    const size_t send = total(shard_after_step((source(s) + 1) % ranks_)) * row_bytes;
    const size_t receive = total(shard_after_step(source(s))) * row_bytes;
    nccl_.after(stream);  // the rows sent, and the buffer received into, are done with on the compute stream
    nccl_.ring_exchange(keys, send, ring_keys_[s % 2].data(), receive, "ring attention: pass keys to the next rank");
    nccl_.ring_exchange(values, send, ring_values_[s % 2].data(), receive, "ring attention: pass values to the next rank");
  };
  if (ranks_ > 1) exchange(1, keys_[l].data(), values_[l].data());
  // Partial states: slot 0 this shard below each run, slot 1 each run over itself, slot 1 + s the
  // shard that came at ring step s.
  auto attend_shard = [&](int slot, const uint16_t* keys, const uint16_t* values, const std::vector<TokenRun>& shard,
                          bool own_runs) {
    size_t q = 0;
    for (const TokenRun& run : plan_[rank_]) {
      const int below = rows_below(shard, run.first_position);
      // Below the run every key is visible (a query offset past the last key); over itself, causal.
      const PrefillShape shape = own_runs ? PrefillShape{run.tokens, run.tokens, 0, heads, step.kv_heads, d, step.scale}
                                          : PrefillShape{run.tokens, below, below, heads, step.kv_heads, d, step.scale};
      const size_t key_row = own_runs ? static_cast<size_t>(below) * row : 0;
      const size_t state = (static_cast<size_t>(slot) * n + q) * heads;
      prefill_attention_gpu(shape, step.queries_bf16 + q * heads * d, keys + key_row, values + key_row,
                            states_out_.data() + state * d, states_lse_.data() + state, stream);
      q += run.tokens;
    }
  };
  const std::vector<TokenRun> mine = shard_after_step(rank_);
  attend_shard(0, keys_[l].data(), values_[l].data(), mine, false);
  attend_shard(1, keys_[l].data(), values_[l].data(), mine, true);
  for (int s = 1; s < ranks_; ++s) {
    nccl_.before(stream);  // the shard of ring step s has arrived
    if (s + 1 < ranks_) exchange(s + 1, ring_keys_[s % 2].data(), ring_values_[s % 2].data());
    attend_shard(1 + s, ring_keys_[s % 2].data(), ring_values_[s % 2].data(), shard_after_step(source(s)), false);
  }
  if (n > 0) merge_states_gpu(ranks_ + 1, n * heads, d, states_out_.data(), states_lse_.data(), step.out, step.lse, stream);
}

void GpuRingCache::attend_decode(const GpuAttentionStep& step, cudaStream_t stream) {
  const int l = step.layer, heads = step.heads, d = step.head_dim;
  const size_t row = kv_row(config_);
  const int held = total(held_[rank_]);
  if (decode_owner_ == rank_) {
    to_bf16_gpu(step.keys, row, keys_[l].data() + held * row, stream);
    to_bf16_gpu(step.values, row, values_[l].data() + held * row, stream);
  }
  const int rows = total(shard_after_step(rank_));
  const DecodeShape shape{rows, heads, step.kv_heads, d, step.scale};
  decode_attention_bf16_gpu(shape, step.queries, keys_[l].data(), values_[l].data(),
                            decode_attention_bf16_splits(rows, step.kv_heads), split_out_.data(), split_lse_.data(),
                            states_out_.data(), states_lse_.data(), stream);
  nccl_.after(stream);
  nccl_.all_gather(states_out_.data(), gathered_out_.data(), static_cast<size_t>(heads) * d * sizeof(float),
                   "decode: gather partial attention");
  nccl_.all_gather(states_lse_.data(), gathered_lse_.data(), static_cast<size_t>(heads) * sizeof(float),
                   "decode: gather partial attention");
  nccl_.before(stream);
  merge_states_gpu(ranks_, heads, d, gathered_out_.data(), gathered_lse_.data(), step.out, step.lse, stream);
}

void GpuRingCache::wait(cudaStream_t stream) { nccl_.wait_for(stream, "forward pass over the ranks' shards"); }

void GpuRingCache::advance(const GpuAttentionStep&) {
  for (int r = 0; r < ranks_; ++r) {
    for (const TokenRun& run : plan_[r]) {
      append_run(held_[r], run);
      length_ += run.tokens;
    }
    plan_[r].clear();
  }
  decode_owner_ = -1;
}

}  // namespace ringkv
