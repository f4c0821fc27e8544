#include "kvstore/kv_dump.hpp"

#include <cstring>

#include "kernels/error.hpp"
#include "kvstore/binary_io.hpp"

namespace ringkv {

namespace {
constexpr char kMagic[8] = {'R', 'K', 'V', 'D', 'U', 'M', 'P', '1'};
constexpr uint32_t kVersion = 1;
}  // namespace

void write_kv_dump(const std::string& path, const KVDump& d) {
  const size_t stream = static_cast<size_t>(d.layers) * d.kv_heads;
  RINGKV_REQUIRE(d.keys.size() == stream * d.stream_elements() && d.values.size() == d.keys.size() &&
                     d.queries.size() == stream * static_cast<size_t>(d.n_queries) * d.head_dim,
                 "KV dump arrays do not match its shape");
  BinaryWriter w;
  begin_file(w, kMagic, kVersion);
  for (int v : {d.layers, d.kv_heads, d.head_dim, d.tokens, d.query_heads_per_kv, d.n_queries}) w.put<int32_t>(v);
  w.put<double>(d.rope_theta);
  for (const auto* a : {&d.keys, &d.values, &d.queries}) w.append(a->data(), a->size() * sizeof(float));
  finish_file(w);
  write_file_atomically(path, w.bytes());
}

KVDump read_kv_dump(const std::string& path) {
  const std::vector<uint8_t> file = read_file(path);
  BinaryReader r = open_file_payload(file, kMagic, kVersion, path, "RingKV KV dump");
  KVDump d;
  d.layers = r.get<int32_t>();
  d.kv_heads = r.get<int32_t>();
  d.head_dim = r.get<int32_t>();
  d.tokens = r.get<int32_t>();
  d.query_heads_per_kv = r.get<int32_t>();
  d.n_queries = r.get<int32_t>();
  d.rope_theta = r.get<double>();
  RINGKV_REQUIRE(d.layers > 0 && d.kv_heads > 0 && d.head_dim > 0 && d.head_dim % 2 == 0 && d.tokens > 0 &&
                     d.query_heads_per_kv > 0 && d.n_queries >= 0 && d.rope_theta > 0,
                 r.source() + " has an invalid header");
  // Check the sizes against the file before allocating: a corrupt header must not ask for terabytes.
  // Check the sizes against the file before allocating: a bad header must not ask for terabytes.
  const double approx = static_cast<double>(d.layers) * d.kv_heads * d.head_dim * (2.0 * d.tokens + d.n_queries) * sizeof(float);
  const size_t streams = static_cast<size_t>(d.layers) * d.kv_heads;
  const size_t need = approx <= static_cast<double>(r.remaining()) + 1
                          ? streams * d.head_dim * (2 * static_cast<size_t>(d.tokens) + d.n_queries) * sizeof(float)
                          : 0;
  RINGKV_REQUIRE(need == r.remaining(),
                 r.source() + " is malformed: its header describes " + std::to_string(d.layers) + " layers x " +
                     std::to_string(d.kv_heads) + " KV heads x " + std::to_string(d.tokens) + " tokens x head_dim " +
                     std::to_string(d.head_dim) + ", which does not match the " + std::to_string(r.remaining()) +
                     " bytes that follow");
  const size_t kv = streams * d.stream_elements();
  const size_t q = streams * d.n_queries * d.head_dim;
  for (auto [array, count] : {std::pair{&d.keys, kv}, std::pair{&d.values, kv}, std::pair{&d.queries, q}}) {
    array->resize(count);
    std::memcpy(array->data(), r.take(count * sizeof(float)), count * sizeof(float));
  }
  return d;
}

}  // namespace ringkv
