#pragma once
// This rank's shard of a bf16 KV cache spread over the job's GPUs, and attention over the whole
// sequence. A prefill segment's queries attend to this shard, then to every other rank's shard as
// it comes around the ring over NCCL (the next shard arriving while the current one is attended);
// a decode step's partial states over each shard are all-gathered and merged in rank order, so
// every rank gets the same output. Every rank appends at the end of the sequence, so a shard holds
// ascending positions: the keys a query run sees in any shard are a prefix of it, plus the run
// itself on its own shard. No host thread waits between layers: the compute stream and NCCL's
// order themselves with events, and the forward pass's final wait watches the peers.
#include <vector>

#include "comm/nccl/nccl_communicator.hpp"
#include "kernels/cuda_check.hpp"
#include "runtime/gpu/gpu_kv_cache.hpp"

namespace ringkv {

class GpuRingCache : public GpuKVCache {
 public:
  // capacity_per_rank: the tokens one shard is expected to hold (it grows if it must);
  // max_step_tokens: the most this rank runs in one step.
  GpuRingCache(const ModelConfig& config, size_t capacity_per_rank, int max_step_tokens, NcclCommunicator& nccl);
  static size_t bytes_needed(const ModelConfig& config, size_t capacity_per_rank, int max_step_tokens, int ranks);

  // The next step's positions on every rank: a prefill segment's plan, or one decode token at the
  // end of the sequence appended by rank `owner`.
  void plan_prefill(std::vector<std::vector<TokenRun>> plan);
  void plan_decode(int owner);

  void attend(const GpuAttentionStep& step, cudaStream_t stream) override;
  void advance(const GpuAttentionStep& step) override;
  void wait(cudaStream_t stream) override;
  int length() const override { return length_; }
  size_t capacity() const override { return capacity_; }
  StorageStats storage() const override;  // this rank's shard

 private:
  void attend_prefill(const GpuAttentionStep& step, cudaStream_t stream);
  void attend_decode(const GpuAttentionStep& step, cudaStream_t stream);
  // Positions rank r's shard holds once this step's tokens are in.
  std::vector<TokenRun> shard_after_step(int r) const;
  // The layout keeps shards level only to within a few pages, so a shard (this one, or one coming
  // around the ring) may outgrow the expected share: the buffers then grow (by a quarter at least),
  // refused with the memory needed when the GPU has no room. Called between steps.
  void make_room();

  ModelConfig config_;
  size_t capacity_;
  int max_step_tokens_;
  NcclCommunicator& nccl_;
  int rank_, ranks_, length_ = 0, decode_owner_ = -1;
  std::vector<std::vector<TokenRun>> held_;  // per rank: the positions its shard holds, ascending
  std::vector<std::vector<TokenRun>> plan_;  // per rank: the positions this step adds
  std::vector<DeviceBuffer<uint16_t>> keys_, values_;     // this shard, per layer [capacity][kv_heads][head_dim]
  DeviceBuffer<uint16_t> ring_keys_[2], ring_values_[2];  // shards coming around (one layer at a time)
  DeviceBuffer<float> states_out_, states_lse_;           // prefill: [ranks + 1][tokens][heads] partial states
  DeviceBuffer<float> split_out_, split_lse_;             // decode attention's workspace
  DeviceBuffer<float> gathered_out_, gathered_lse_;       // decode: every rank's partial state
};

}  // namespace ringkv
