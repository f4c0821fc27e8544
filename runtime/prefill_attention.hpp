#pragma once
// Causal attention of a prefill chunk over one (layer, KV head) of the shard, after the chunk's
// keys and values were appended. Every query sees the cache exactly as a token-by-token decode
// would have right after appending the query's own token: sealed pages in their compressed form,
// its own page in tail form unless that token filled (and so sealed) it. Results therefore do not
// depend on the chunk size.
#include <vector>

#include "kvstore/kv_shard.hpp"

namespace ringkv {

struct PrefillChunk {
  int first_position = 0;
  int tokens = 0;
  const float* keys_pre_rope = nullptr;  // [tokens][head_dim] of this KV head
  const float* values = nullptr;         // [tokens][head_dim]
};

// The shard's tail before the chunk was appended, in tail form (see KVShard::tail_rows).
struct TailBeforeChunk {
  int first_position = -1;  // -1: empty
  std::vector<float> keys_post_rope, values;
};

// queries: post-RoPE [tokens][group][head_dim] (the query heads of this KV head for each token);
// out: [tokens][group][head_dim]. received, when given, gets += the attention each stored position
// receives from these queries (indexed by position; sized past the chunk's last position).
void prefill_attention(const KVShard& kv, int layer, int kv_head, const PrefillChunk& chunk, const TailBeforeChunk& tail,
                       const float* queries, int group, float scale, float* out, std::vector<double>* received);

}  // namespace ringkv
