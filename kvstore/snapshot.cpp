// Snapshots of a KVShard. Format (little-endian):
//   "RKVSNAP1" | u32 version | i32 layers, kv_heads, head_dim, page_size | string KV spec |
//   u64 calibration fingerprint (0 without calibration) | u64 RoPE fingerprint |
//   per (layer, head) in order: u32 pages, then per page: key header (8 bytes), key bytes,
//   value header (8 bytes), value bytes; i32 tail first position, i32 tail tokens, tail key and
//   value bf16 rows | u64 checksum64 of everything before it.
// Page byte counts are not stored: they follow from the codec and the header, and are checked.
#include <cstring>

#include "kernels/error.hpp"
#include "kvstore/binary_io.hpp"
#include "kvstore/kv_shard.hpp"
#include "kvstore/kv_shard_stream.hpp"

namespace ringkv {

namespace {
constexpr char kMagic[8] = {'R', 'K', 'V', 'S', 'N', 'A', 'P', '1'};
constexpr uint32_t kSnapshotVersion = 2;  // 2: INT value codes channel-major

uint64_t rope_fingerprint(const RopeTable& rope) {
  return checksum64(rope.inv_freq.data(), rope.inv_freq.size() * sizeof(float));
}

void expect(bool ok, const std::string& path, const std::string& what) {
  RINGKV_REQUIRE(ok, "snapshot " + path + " does not match this shard: " + what);
}
}  // namespace

void KVShard::save_snapshot(const std::string& path) const {
  BinaryWriter w;
  begin_file(w, kMagic, kSnapshotVersion);
  for (int v : {config_.layers, config_.kv_heads, config_.head_dim, config_.page_size}) w.put<int32_t>(v);
  w.put_string(config_.spec.text());
  w.put<uint64_t>(calibration_ ? calibration_->fingerprint() : 0);
  w.put<uint64_t>(rope_fingerprint(config_.rope));
  for (const auto& s : streams_) {
    w.put<uint32_t>(static_cast<uint32_t>(s->pages.size()));
    for (const SealedPage& p : s->pages) {
      w.put(p.key);
      w.append(key_pool_->data(p.key_slot), s->key_codec->encoded_bytes(p.key.tokens, p.key.first_position));
      w.put(p.value);
      w.append(value_pool_->data(p.value_slot), s->value_codec->encoded_bytes(p.value.tokens, p.value.first_position));
    }
    w.put<int32_t>(s->tail_first_position);
    w.put<int32_t>(s->tail_tokens);
    w.append(s->tail_keys.data(), s->tail_key_codec->encoded_bytes(s->tail_tokens, 0));
    w.append(s->tail_values.data(), s->tail_value_codec->encoded_bytes(s->tail_tokens, 0));
  }
  finish_file(w);
  write_file_atomically(path, w.bytes());
}

KVShard KVShard::load_snapshot(const std::string& path, ShardConfig config, const Calibration* calibration) {
  const std::vector<uint8_t> file = read_file(path);
  BinaryReader r = open_file_payload(file, kMagic, kSnapshotVersion, path, "RingKV snapshot");
  const int layers = r.get<int32_t>(), heads = r.get<int32_t>(), dim = r.get<int32_t>(), page = r.get<int32_t>();
  expect(layers == config.layers && heads == config.kv_heads && dim == config.head_dim && page == config.page_size, path,
         "it holds " + std::to_string(layers) + " layers x " + std::to_string(heads) + " heads, head_dim " +
             std::to_string(dim) + ", page size " + std::to_string(page));
  const std::string spec = r.get_string();
  expect(spec == config.spec.text(), path, "it was written with KV codec '" + spec + "', not '" + config.spec.text() + "'");
  const uint64_t cal = r.get<uint64_t>();
  expect(cal == (calibration ? calibration->fingerprint() : 0), path, "it was encoded with other codebooks (calibration)");
  expect(r.get<uint64_t>() == rope_fingerprint(config.rope), path, "its RoPE settings differ");

  KVShard shard(std::move(config), calibration);
  auto read_header = [&](const PageCodec& codec, Role role) {
    const SealedPageHeader h = r.get<SealedPageHeader>();
    RINGKV_REQUIRE(h.codec_kind == static_cast<uint8_t>(codec.kind()) && h.role == static_cast<uint8_t>(role) &&
                       h.tokens > 0 && h.tokens <= shard.config_.page_size && h.first_position >= 0,
                   "snapshot " + path + " has a malformed page header at offset " + std::to_string(r.offset() - 8));
    return h;
  };
  for (auto& s : shard.streams_) {
    const uint32_t pages = r.get<uint32_t>();
    for (uint32_t i = 0; i < pages; ++i) {
      SealedPage p{};
      p.key = read_header(*s->key_codec, Role::Key);
      const uint8_t* kb = r.take(s->key_codec->encoded_bytes(p.key.tokens, p.key.first_position));
      p.value = read_header(*s->value_codec, Role::Value);
      RINGKV_REQUIRE(p.value.tokens == p.key.tokens && p.value.first_position == p.key.first_position,
                     "snapshot " + path + ": key and value pages disagree at offset " + std::to_string(r.offset()));
      const uint8_t* vb = r.take(s->value_codec->encoded_bytes(p.value.tokens, p.value.first_position));
      p.key_slot = shard.key_pool_->allocate();
      p.value_slot = shard.value_pool_->allocate();
      std::memcpy(shard.key_pool_->data(p.key_slot), kb, s->key_codec->encoded_bytes(p.key.tokens, p.key.first_position));
      std::memcpy(shard.value_pool_->data(p.value_slot), vb,
                  s->value_codec->encoded_bytes(p.value.tokens, p.value.first_position));
      s->pages.push_back(p);
      s->sealed_tokens += p.key.tokens;
    }
    s->tail_first_position = r.get<int32_t>();
    s->tail_tokens = r.get<int32_t>();
    RINGKV_REQUIRE(s->tail_tokens >= 0 && s->tail_tokens < shard.config_.page_size && s->tail_first_position >= 0,
                   "snapshot " + path + " has a malformed tail at offset " + std::to_string(r.offset() - 8));
    const size_t key_bytes = s->tail_key_codec->encoded_bytes(s->tail_tokens, 0);
    const size_t value_bytes = s->tail_value_codec->encoded_bytes(s->tail_tokens, 0);
    std::memcpy(s->tail_keys.data(), r.take(key_bytes), key_bytes);
    std::memcpy(s->tail_values.data(), r.take(value_bytes), value_bytes);
  }
  RINGKV_REQUIRE(r.remaining() == 0, "snapshot " + path + " has " + std::to_string(r.remaining()) + " unexpected trailing bytes");
  return shard;
}

}  // namespace ringkv
