#pragma once
// KV dumps: the keys, values and sample queries of every layer and KV head of one sequence, as
// `ringkv analyze` and `ringkv calibrate` read them. `ringkv synth-kv` writes generated ones.
//
// File format, little-endian:
//   char[8]  magic "RKVDUMP1"
//   u32      format version, 1
//   i32 x 6  layers, kv_heads, head_dim (even), tokens, query_heads_per_kv (GQA group size), n_queries
//   f64      rope_theta
//   f32      keys    [layers][kv_heads][tokens][head_dim], before RoPE
//   f32      values  [layers][kv_heads][tokens][head_dim]
//   f32      queries [layers][kv_heads][n_queries][head_dim], after RoPE at position `tokens`
//   u64      FNV-1a 64 checksum of every preceding byte
#include <cstddef>
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
  size_t kv_offset(int layer, int head) const { return stream_index(layer, head) * stream_elements(); }
  size_t query_offset(int layer, int head) const {
    return stream_index(layer, head) * static_cast<size_t>(n_queries) * head_dim;
  }
  // [tokens][head_dim] and [n_queries][head_dim] of one (layer, KV head).
  const float* keys_at(int layer, int head) const { return keys.data() + kv_offset(layer, head); }
  const float* values_at(int layer, int head) const { return values.data() + kv_offset(layer, head); }
  const float* queries_at(int layer, int head) const { return queries.data() + query_offset(layer, head); }
  float* keys_at(int layer, int head) { return keys.data() + kv_offset(layer, head); }
  float* values_at(int layer, int head) { return values.data() + kv_offset(layer, head); }
  float* queries_at(int layer, int head) { return queries.data() + query_offset(layer, head); }
};

// Writes atomically (a crash leaves the old file or none). Refuses a shape that the reader would
// refuse, or arrays that do not match the shape.
void write_kv_dump(const std::string& path, const KVDump& dump);
// Refuses wrong magic or version, an invalid header, sizes that do not match the file (checked
// before allocating), truncation and checksum mismatches, naming the file.
KVDump read_kv_dump(const std::string& path);

}  // namespace ringkv
