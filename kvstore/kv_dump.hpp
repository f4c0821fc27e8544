#pragma once
// KV dumps: the keys, values and sample queries of every layer and KV head of one sequence, as
// `ringkv analyze` and `ringkv calibrate` read them. `ringkv synth-kv` writes generated ones.
//
// File format (little-endian):
//   "RKVDUMP1" | u32 version (1) | i32 layers, kv_heads, head_dim, tokens, query_heads_per_kv,
//   n_queries | f64 rope_theta | f32 keys [layers][kv_heads][tokens][head_dim] (before RoPE) |
//   f32 values [layers][kv_heads][tokens][head_dim] | f32 queries [layers][kv_heads][n_queries]
//   [head_dim] (after RoPE, at position `tokens`) | u64 FNV-1a 64 checksum of all preceding bytes.
#include <cstdint>
#include <string>
#include <vector>

namespace ringkv {

struct KVDump {
  int layers = 0, kv_heads = 0, head_dim = 0, tokens = 0;
  int query_heads_per_kv = 1;
  int n_queries = 0;
  double rope_theta = 10000.0;
  std::vector<float> keys, values, queries;

  size_t stream_elements() const { return static_cast<size_t>(tokens) * head_dim; }
  size_t stream_index(int layer, int head) const { return static_cast<size_t>(layer) * kv_heads + head; }
  const float* keys_at(int layer, int head) const { return keys.data() + stream_index(layer, head) * stream_elements(); }
  const float* values_at(int layer, int head) const { return values.data() + stream_index(layer, head) * stream_elements(); }
  const float* queries_at(int layer, int head) const {
    return queries.data() + stream_index(layer, head) * static_cast<size_t>(n_queries) * head_dim;
  }
};

void write_kv_dump(const std::string& path, const KVDump& dump);
// Refuses wrong magic or version, sizes that do not match the file (before allocating), truncation
// and checksum mismatches, naming the file.
KVDump read_kv_dump(const std::string& path);

}  // namespace ringkv
