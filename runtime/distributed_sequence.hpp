#pragma once
// One sequence (a prompt and its continuation) whose KV cache is spread over the job's ranks, one
// shard each: prefill runs ring attention over zigzag chunks of whole pages, decode runs every
// token on every rank and merges the ranks' partial states. Every rank gets the same logits.
// Without a communicator (or with one rank) this is plain chunked prefill and decode.
#include <span>
#include <string>
#include <vector>

#include "runtime/sequence_layout.hpp"
#include "runtime/token_sequence.hpp"
#include "runtime/transformer.hpp"

namespace ringkv {

class DistributedSequence : public TokenSequence {
 public:
  DistributedSequence(const Transformer& model, KVShard& kv, Communicator* comm);

  // Appends tokens to the sequence in segments of about chunk_tokens per rank. logits:
  // [tokens][vocab] when all_logits, else [vocab] of the last token.
  void prefill(std::span<const int32_t> tokens, int chunk_tokens, std::vector<float>& logits, bool all_logits) override;
  // Appends one token; logits [vocab].
  void decode(int32_t token, std::vector<float>& logits) override;

  // Saves the sequence into a folder (each rank's shard, and the layout with `fingerprint`, which
  // names the content, e.g. a checksum of the document's tokens); every rank calls it.
  void save(const std::string& dir, uint64_t fingerprint) const;
  // Loads a sequence saved with the same number of ranks, page size, codec and calibration (each
  // is checked, with a clear error) in place of this one; returns its fingerprint.
  uint64_t load(const std::string& dir);
  // The length of the sequence saved in `dir`, to size the shards before loading it.
  static int saved_length(const std::string& dir);

  int length() const override { return layout_.length(); }
  StorageStats kv_storage() const override { return kv_.stats(); }
  const SequenceLayout& layout() const { return layout_; }
  // Compressed page bytes this rank sent around the ring so far, and the time it waited on them.
  size_t ring_bytes_sent() const { return ring_bytes_sent_; }
  double ring_wait_seconds() const { return ring_wait_seconds_; }

 private:
  int rank() const { return comm_ ? comm_->rank() : 0; }

  const Transformer& model_;
  KVShard& kv_;
  Communicator* comm_;
  SequenceLayout layout_;
  size_t ring_bytes_sent_ = 0;
  double ring_wait_seconds_ = 0;
};

}  // namespace ringkv
