#pragma once
// What generate, logits and qa share: the prompt's token ids read on rank 0 and sent to all, the
// model, this rank's shard of the KV cache (refused before allocating when the context does not
// fit), and the sequence spread over the job's ranks; or, with --device gpu, the sequence on the GPU.
#include <memory>
#include <string>
#include <vector>

#include "launch/cli/model_options.hpp"
#include "runtime/distributed_sequence.hpp"

namespace ringkv::cli {

// Rank 0's token ids on every rank (rank 0 reads the files: other nodes need not have them).
void share_tokens(std::vector<int32_t>& tokens);

class SequenceRun {
 public:
  // context_tokens: the longest the sequence will grow.
  SequenceRun(const ModelOptions& options, const ModelWeights& weights, const KVSpec& spec, size_t context_tokens);

  TokenSequence& sequence() { return sharded_ ? static_cast<TokenSequence&>(*sharded_) : *gpu_; }
  // The CPU ranks' sequence (saving and loading shards); refused on the GPU backend.
  DistributedSequence& sharded_sequence();
  bool prints() const { return Communicator::world().rank() == 0; }
  // "KV cache (spec): bytes over all ranks, bits per element" plus the per-rank spread; every rank
  // must call it (it gathers).
  std::string storage_report() const;

 private:
  KVSpec spec_;
  std::unique_ptr<Calibration> calibration_;
  const ModelConfig& config_;
  std::unique_ptr<Transformer> model_;
  std::unique_ptr<KVShard> kv_;
  std::unique_ptr<DistributedSequence> sharded_;
  std::unique_ptr<TokenSequence> gpu_;
};

std::string format_bytes(double bytes);

}  // namespace ringkv::cli
