#pragma once
// One sequence spread over the job's GPUs, one rank per GPU: every rank holds the weights and a
// shard of the bf16 KV cache; prefill runs the ranks' zigzag chunks of each segment with ring
// attention over NCCL, decode runs every token on every rank and merges the shards' partial
// attention. Every rank gets the same logits.
#include "comm/nccl/nccl_communicator.hpp"
#include "runtime/gpu/gpu_ring_cache.hpp"
#include "runtime/gpu/gpu_transformer.hpp"
#include "runtime/sequence_layout.hpp"
#include "runtime/token_sequence.hpp"

namespace ringkv {

class GpuSequenceParallel : public TokenSequence {
 public:
  // The rank's GPU must be selected (bind_rank_to_gpu). Refuses, before allocating, a model and
  // context whose share does not fit in this GPU's free memory.
  GpuSequenceParallel(const ModelWeights& weights, size_t context_tokens, int chunk_tokens, int page_size,
                      Communicator& mpi);

  void prefill(std::span<const int32_t> tokens, int chunk_tokens, std::vector<float>& logits, bool all_logits) override;
  void decode(int32_t token, std::vector<float>& logits) override;
  int length() const override { return layout_.length(); }
  StorageStats kv_storage() const override { return cache_.storage(); }

 private:
  Communicator& mpi_;
  int max_chunk_;
  NcclCommunicator nccl_;
  GpuTransformer model_;
  GpuRingCache cache_;
  SequenceLayout layout_;
};

}  // namespace ringkv
