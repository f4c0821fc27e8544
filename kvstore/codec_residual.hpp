#pragma once
// Residual vector quantization: each token vector is divided by its standard deviation (kept as
// fp16), its channels are split into groups of `group` (strided, non-contiguous groups for keys;
// contiguous for values), and every group is quantized by the same stack of `depth` codebooks of
// `codes` entries, each coding the residual left by the ones before it. Keys are stored pre-RoPE.
// Spec: "rvq:depth=8,codes=256,group=8,prerope=1,weights=uniform|attention".
#include <vector>

#include "kvstore/codec.hpp"

namespace ringkv {

struct ResidualParams {
  int depth = 8, codes = 256, group = 8;
  bool pre_rope = true;
  // Refuses a group that does not divide head_dim.
  static ResidualParams from(const CodecSpec& spec, int head_dim);
  int code_bits() const;
};

class ResidualCodec final : public PageCodec {
 public:
  ResidualCodec(const CodecSpec& spec, Role role, const CodecContext& context);
  CodecKind kind() const override { return CodecKind::Residual; }
  bool stores_pre_rope_keys() const override { return role() == Role::Key && pre_rope_; }
  size_t encoded_bytes(int tokens, int first_position) const override;
  size_t codebook_bytes() const override { return codebooks_.size() * sizeof(float); }
  void encode(const float* rows, int tokens, int first_position, uint8_t* out) const override;
  void decode_rows(const PageView& page, int row_begin, int row_end, float* out) const override;

  // Bytes of a page of `tokens` tokens (every page alike), without a codec (no calibration needed).
  static size_t page_bytes(const CodecSpec& spec, int head_dim, int tokens);

  static void learn(const CodecSpec& spec, Role role, const CodecContext& context, const RopeTable& rope,
                    const CalibrationSamples& samples, Calibration& calibration);

 private:
  int depth_, codes_, code_bits_, group_, groups_;
  bool pre_rope_;
  std::vector<int> channel_of_;     // [groups][group]: head channel of each group slot
  std::vector<float> codebooks_;    // [depth][codes][group]
};

}  // namespace ringkv
