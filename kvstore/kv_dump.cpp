#include "kvstore/kv_dump.hpp"

#include <cmath>
#include <cstdint>
#include <cstring>

#include "kernels/error.hpp"
#include "kvstore/binary_io.hpp"

namespace ringkv {

namespace {
constexpr char kMagic[8] = {'R', 'K', 'V', 'D', 'U', 'M', 'P', '1'};
constexpr uint32_t kVersion = 1;

bool valid_shape(const KVDump& d) {
  return d.layers > 0 && d.kv_heads > 0 && d.head_dim > 0 && d.head_dim % 2 == 0 && d.tokens > 0 &&
         d.query_heads_per_kv > 0 && d.n_queries >= 0 && d.rope_theta > 0 && std::isfinite(d.rope_theta);
}

// Bytes of the three arrays the shape describes, or SIZE_MAX where that overflows.
size_t array_bytes(const KVDump& d) {
  size_t n = sizeof(float);
  for (size_t factor : {static_cast<size_t>(d.layers), static_cast<size_t>(d.kv_heads), static_cast<size_t>(d.head_dim),
                        2 * static_cast<size_t>(d.tokens) + static_cast<size_t>(d.n_queries)})
    if (__builtin_mul_overflow(n, factor, &n)) return SIZE_MAX;
  return n;
}

std::string describe_shape(const KVDump& d) {
  return std::to_string(d.layers) + " layers x " + std::to_string(d.kv_heads) + " KV heads x " +
         std::to_string(d.tokens) + " tokens (+" + std::to_string(d.n_queries) + " queries) x head_dim " +
         std::to_string(d.head_dim);
}
}  // namespace

void write_kv_dump(const std::string& path, const KVDump& d) {
  RINGKV_REQUIRE(valid_shape(d), "cannot write KV dump " + path + ": invalid shape " + describe_shape(d));
  const size_t stream = static_cast<size_t>(d.layers) * d.kv_heads;
  RINGKV_REQUIRE(d.keys.size() == stream * d.stream_elements() && d.values.size() == d.keys.size() &&
                     d.queries.size() == stream * static_cast<size_t>(d.n_queries) * d.head_dim,
                 "cannot write KV dump " + path + ": its arrays do not match its shape " + describe_shape(d));
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
  RINGKV_REQUIRE(valid_shape(d), r.source() + " has an invalid header: " + describe_shape(d) + ", " +
                                     std::to_string(d.query_heads_per_kv) + " query heads per KV head, rope_theta " +
                                     std::to_string(d.rope_theta));
  // Sizes are checked against the file before allocating: a corrupt header must not ask for terabytes.
  RINGKV_REQUIRE(array_bytes(d) == r.remaining(), r.source() + " is malformed: its header describes " +
                                                      describe_shape(d) + ", which does not match the " +
                                                      std::to_string(r.remaining()) + " bytes that follow");
  const size_t streams = static_cast<size_t>(d.layers) * d.kv_heads;
  const size_t kv = streams * d.stream_elements();
  const size_t q = streams * d.n_queries * d.head_dim;
  for (auto [array, count] : {std::pair{&d.keys, kv}, std::pair{&d.values, kv}, std::pair{&d.queries, q}}) {
    array->resize(count);
    if (count > 0) std::memcpy(array->data(), r.take(count * sizeof(float)), count * sizeof(float));
  }
  return d;
}

}  // namespace ringkv
