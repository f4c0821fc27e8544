#pragma once
// bf16 / fp16 / fp32: the uncompressed baselines, and the format of the shard's tail (fp32 keeps
// the cache exact, for comparing the runtime with other implementations in fp32).
// Spec: "bf16", "fp16" or "fp32", optional prerope=1 to store keys before RoPE (the tail of a
// pre-RoPE codec).
#include "kvstore/codec.hpp"

namespace ringkv {

class FloatCodec final : public PageCodec {
 public:
  FloatCodec(const CodecSpec& spec, Role role, const CodecContext& context);
  CodecKind kind() const override { return CodecKind::Float; }
  bool stores_pre_rope_keys() const override { return pre_rope_; }
  size_t encoded_bytes(int tokens, int first_position) const override;
  void encode(const float* rows, int tokens, int first_position, uint8_t* out) const override;
  void decode_rows(const PageView& page, int row_begin, int row_end, float* out) const override;

 private:
  enum class Format { BF16, FP16, FP32 } format_;
  bool pre_rope_;
  size_t element_bytes() const { return format_ == Format::FP32 ? 4 : 2; }
};

}  // namespace ringkv
