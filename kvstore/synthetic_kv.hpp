#pragma once
// Generated KV data with the structure of a trained model's keys and values: channels correlated
// through a low-rank latent, a few outlier channels with large magnitude and offset (keys, before
// RoPE, in the slowly rotating channels), a large-norm attention-sink token and a few other
// large-norm tokens, per-token scale variation of values, slow drift along the sequence, and
// queries whose attention is peaked but not one-hot (entropy 30-60% of uniform, a share on the
// sink). Streams are generated in parallel; the result does not depend on the thread count.
#include <cstdint>

#include "kvstore/kv_dump.hpp"

namespace ringkv {

struct SyntheticKVOptions {
  int layers = 2;
  int kv_heads = 2;
  int head_dim = 128;
  int tokens = 4096;
  int n_queries = 16;
  int query_heads_per_kv = 4;
  double rope_theta = 10000.0;
  uint64_t model_seed = 1;  // the "model": channel mixing, scales, offsets and outlier channels
  uint64_t seed = 1;        // the "text": the token sequence drawn from that model
};

KVDump make_synthetic_kv(const SyntheticKVOptions& options);

}  // namespace ringkv
