#pragma once
// The attention step of one forward pass over a sequence's KV cache, held in one shard or spread
// over the ranks' shards. The step's keys and values go into the shard first; then every query
// attends to everything before it exactly as a token-by-token decode on one rank would see it
// (sealed pages compressed, its own page in tail form), whichever rank holds the pages:
// - prefill: each rank runs its own tokens; its queries attend to its shard, then P-1 ring steps
//   pass every rank's sealed pages (compressed) around while the current ones are attended to;
// - decode: every rank runs the same token, one rank appends it, every rank attends to its shard
//   and the partial states are all-gathered and merged in rank order, identically everywhere.
#include <vector>

#include "comm/communicator.hpp"
#include "kvstore/kv_shard.hpp"
#include "runtime/sequence_layout.hpp"

namespace ringkv {

struct AttentionShape {
  int heads = 1, kv_heads = 1, head_dim = 1;
  float scale = 1;  // scores are scale * q.k
};

class SequenceAttention {
 public:
  // Prefill of this rank's runs; comm null (or of one rank) for a shard that holds everything.
  static SequenceAttention prefill(KVShard& kv, Communicator* comm, std::vector<TokenRun> runs);
  // Decode of one token at `position` on every rank, appended by rank `owner`.
  static SequenceAttention decode(KVShard& kv, Communicator* comm, int position, int owner);

  const std::vector<TokenRun>& runs() const { return runs_; }
  int tokens() const;

  // Appends the step's keys and values of one layer and writes the attention output. q: post-RoPE
  // [tokens][heads][head_dim]; k (pre-RoPE), v: [tokens][kv_heads][head_dim]; out like q.
  // received (single rank only), when given, gets per KV head the attention each position receives.
  void run(int layer, const AttentionShape& shape, const float* q, const float* k, const float* v, float* out,
           std::vector<std::vector<double>>* received);

  // Bytes of compressed pages this rank sent around the ring so far, and the time it waited for
  // ring steps to finish after its compute (the part of the traffic not hidden under compute).
  size_t ring_bytes_sent() const { return ring_bytes_sent_; }
  double ring_wait_seconds() const { return ring_wait_seconds_; }

 private:
  SequenceAttention(KVShard& kv, Communicator* comm, std::vector<TokenRun> runs, int decode_owner);
  void run_prefill(int layer, const AttentionShape& shape, const float* q, const float* k, const float* v, float* out,
                   std::vector<std::vector<double>>* received);
  void run_decode(int layer, const AttentionShape& shape, const float* q, const float* k, const float* v, float* out);
  int ranks() const { return comm_ ? comm_->size() : 1; }

  KVShard& kv_;
  Communicator* comm_;
  std::vector<TokenRun> runs_;
  int decode_owner_;  // -1: prefill
  size_t ring_bytes_sent_ = 0;
  double ring_wait_seconds_ = 0;
};

}  // namespace ringkv
