#pragma once
// Partial attention of queries over compressed pages, read directly through their codecs: the
// CPU twin of the decode-attention kernels. Pages are split into chunks processed in parallel, and
// the chunk states merge by log-sum-exp in a fixed order, so results do not depend on thread count.
#include <span>

#include "kernels/attention_state.hpp"
#include "kvstore/codec.hpp"

namespace ringkv {

struct PagedKV {
  const PageCodec* key_codec = nullptr;
  const PageCodec* value_codec = nullptr;
  std::span<const PageView> keys;    // keys[i] and values[i] hold the same tokens
  std::span<const PageView> values;
};

// queries: post-RoPE [n_queries][head_dim]; scores are scale * q.k.
AttentionState partial_attention(const PagedKV& kv, const float* queries, int n_queries, const RopeTable& rope,
                                 float scale);

}  // namespace ringkv
