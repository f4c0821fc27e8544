#pragma once
// Internals of KVShard shared by the shard and its snapshot code: one (layer, KV head) stream.
#include <cstdint>
#include <memory>
#include <vector>

#include "kvstore/codec.hpp"
#include "kvstore/kv_shard.hpp"

namespace ringkv {

// What the shard keeps per sealed page and role; snapshots write exactly these bytes per page.
struct SealedPageHeader {
  int32_t first_position;
  uint16_t tokens;
  uint8_t codec_kind;
  uint8_t role;
};
static_assert(sizeof(SealedPageHeader) == 8);

struct SealedPage {
  SealedPageHeader key, value;
  uint32_t key_slot, value_slot;
};

struct KVShard::Stream {
  std::unique_ptr<PageCodec> key_codec, value_codec;
  std::unique_ptr<PageCodec> tail_key_codec, tail_value_codec;  // bf16 (fp32 under fp32), in the same key domain
  std::vector<SealedPage> pages;
  std::vector<uint8_t> tail_keys, tail_values;  // tail codec rows, capacity page_size
  int tail_tokens = 0;
  int tail_first_position = 0;
  size_t sealed_tokens = 0;
};

}  // namespace ringkv
