#pragma once
// One sequence (a prompt and its continuation) as the commands drive it, whatever holds its KV
// cache: the CPU ranks' shards (DistributedSequence) or one GPU (GpuSequence).
#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "kvstore/kv_shard.hpp"
#include "runtime/sampler.hpp"

namespace ringkv {

class TokenSequence {
 public:
  virtual ~TokenSequence() = default;
  // Appends tokens in chunks of about chunk_tokens. logits: [tokens][vocab] when all_logits, else
  // [vocab] of the last token.
  virtual void prefill(std::span<const int32_t> tokens, int chunk_tokens, std::vector<float>& logits, bool all_logits) = 0;
  // Appends one token; logits [vocab].
  virtual void decode(int32_t token, std::vector<float>& logits) = 0;
  // The next token, drawn by `sampler` from the last token's logits (those prefill or decode gave),
  // where they are: on the CPU here, on the device in the one-GPU sequence. (Over several ranks
  // every rank draws from the same broadcast logits on its CPU.)
  virtual int32_t next_token(Sampler& sampler, std::span<const float> logits) { return sampler.next(logits); }
  virtual int length() const = 0;
  // What this process's part of the KV cache takes as stored (pages, tails, codec tables).
  virtual StorageStats kv_storage() const = 0;
  size_t stored_kv_bytes() const { return kv_storage().total(); }
};

}  // namespace ringkv
