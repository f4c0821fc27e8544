// Sealed pages of one layer packed for another rank (ring attention). Format (little-endian):
//   i32 layer | per head: u32 pages, then per page: key header (8 bytes), key bytes, value header,
//   value bytes. The receiving shard has the same config and codebooks, so it decodes the bytes
//   as they were encoded; headers are checked against its codecs.
#include "kernels/error.hpp"
#include "kvstore/binary_io.hpp"
#include "kvstore/kv_shard.hpp"
#include "kvstore/kv_shard_stream.hpp"

namespace ringkv {

std::vector<uint8_t> KVShard::pack_sealed_pages(int layer) const {
  BinaryWriter w;
  w.put<int32_t>(layer);
  for (int h = 0; h < config_.kv_heads; ++h) {
    const Stream& s = stream(layer, h);
    w.put<uint32_t>(static_cast<uint32_t>(s.pages.size()));
    for (const SealedPage& p : s.pages) {
      w.put(p.key);
      w.append(key_pool_->data(p.key_slot), s.key_codec->encoded_bytes(p.key.tokens, p.key.first_position));
      w.put(p.value);
      w.append(value_pool_->data(p.value_slot), s.value_codec->encoded_bytes(p.value.tokens, p.value.first_position));
    }
  }
  return w.bytes();
}

void KVShard::visit_packed_pages(int layer, std::span<const uint8_t> packed, int below, size_t batch_tokens,
                                 const std::function<void(int head, const KVRows&)>& visit) const {
  BinaryReader r(packed.data(), packed.size(), "pages of layer " + std::to_string(layer) + " from another rank");
  RINGKV_REQUIRE(r.get<int32_t>() == layer, r.source() + " are labelled with another layer");
  for (int h = 0; h < config_.kv_heads; ++h) {
    const Stream& s = stream(layer, h);
    auto read_header = [&](const PageCodec& codec, Role role) {
      const SealedPageHeader header = r.get<SealedPageHeader>();
      RINGKV_REQUIRE(header.codec_kind == static_cast<uint8_t>(codec.kind()) && header.role == static_cast<uint8_t>(role) &&
                         header.tokens > 0 && header.tokens <= config_.page_size && header.first_position >= 0,
                     r.source() + " hold a malformed page header at offset " + std::to_string(r.offset() - 8));
      return header;
    };
    const uint32_t pages = r.get<uint32_t>();
    KVRows batch;
    for (uint32_t i = 0; i < pages; ++i) {
      const SealedPageHeader kh = read_header(*s.key_codec, Role::Key);
      const PageView k{r.take(s.key_codec->encoded_bytes(kh.tokens, kh.first_position)), kh.tokens, kh.first_position};
      const SealedPageHeader vh = read_header(*s.value_codec, Role::Value);
      RINGKV_REQUIRE(vh.tokens == kh.tokens && vh.first_position == kh.first_position,
                     r.source() + ": key and value pages disagree at offset " + std::to_string(r.offset()));
      const PageView v{r.take(s.value_codec->encoded_bytes(vh.tokens, vh.first_position)), vh.tokens, vh.first_position};
      if (kh.first_position >= below) continue;  // no query here sees it: checked, not decoded
      add_decoded_page(*s.key_codec, *s.value_codec, k, v, batch);
      if (batch.size() >= batch_tokens) visit(h, batch), batch = {};
    }
    if (batch.size() > 0) visit(h, batch);
  }
  RINGKV_REQUIRE(r.remaining() == 0, r.source() + " have " + std::to_string(r.remaining()) + " unexpected trailing bytes");
}

}  // namespace ringkv
