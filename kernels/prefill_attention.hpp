#pragma once
// Causal prefill attention of a chunk of queries over bf16 keys and values, returning (out, lse)
// so that chunks and ring steps merge. Query i is at position q_offset + i, key j at position j;
// a query sees the keys at or before its position. Grouped-query attention: query head h reads
// KV head h / (heads / kv_heads). Scores are scale * q.k. This is the CPU twin of the GPU kernel.
#include <cstdint>

namespace ringkv {

struct PrefillShape {
  int n_queries = 0, n_keys = 0, q_offset = 0;
  int heads = 1, kv_heads = 1, head_dim = 128;
  float scale = 1;
};

// q: bf16 [n_queries][heads][head_dim]; k, v: bf16 [n_keys][kv_heads][head_dim]; out: fp32
// [n_queries][heads][head_dim]; lse: fp32 [n_queries][heads] (-inf where a query sees no key).
void prefill_attention_cpu(const PrefillShape& s, const uint16_t* q, const uint16_t* k, const uint16_t* v, float* out,
                           float* lse);

}  // namespace ringkv
