#pragma once
// KVQuant: keys quantized per channel and before RoPE, values per token; non-uniform levels (NUQ)
// learned per layer and head by weighted 1-D k-means on normalized calibration values; per-vector
// dense-and-sparse outliers (the top fraction of each vector, by distance from its mean, kept
// exactly as fp16 with its index); Q-Norm (levels shifted and scaled so that dequantized values keep
// the calibration mean and spread); attention-sink tokens kept in fp16.
// Spec: "kvquant:bits=3,outliers=0.01,sink=1,nuq=1,qnorm=0,prerope=1,weights=uniform|attention".
#include <vector>

#include "kvstore/codec.hpp"

namespace ringkv {

struct KVQuantParams {
  int bits = 3;
  double outliers = 0.0;   // fraction of each vector kept sparse
  int sink = 0;            // first positions of the sequence kept in fp16
  bool nuq = true;         // learned levels (false: uniform levels, no calibration needed)
  bool qnorm = false;
  bool pre_rope = true;
  static KVQuantParams from(const CodecSpec& spec);
};

class KVQuantCodec final : public PageCodec {
 public:
  KVQuantCodec(const CodecSpec& spec, Role role, const CodecContext& context);
  CodecKind kind() const override { return CodecKind::KVQuant; }
  bool stores_pre_rope_keys() const override { return role() == Role::Key && params_.pre_rope; }
  size_t encoded_bytes(int tokens, int first_position) const override;
  size_t codebook_bytes() const override { return params_.nuq ? levels_.size() * sizeof(float) : 0; }
  void encode(const float* rows, int tokens, int first_position, uint8_t* out) const override;
  void decode_rows(const PageView& page, int row_begin, int row_end, float* out) const override;

  const KVQuantParams& params() const { return params_; }
  // The levels codes index: learned (NUQ) or uniform, sorted, in the normalized range [-1, 1].
  const std::vector<float>& levels() const { return levels_; }
  // Bytes of a page of `tokens` tokens from first_position, for a role, without a codec (no
  // calibration needed): what sizes the GPU's page slots.
  static size_t page_bytes(const CodecSpec& spec, Role role, int head_dim, int tokens, int first_position);

  static bool needs_calibration(const CodecSpec& spec);
  static void learn(const CodecSpec& spec, Role role, const CodecContext& context, const RopeTable& rope,
                    const CalibrationSamples& samples, Calibration& calibration);

 private:
  struct Layout;
  static Layout layout_of(const KVQuantParams& params, Role role, int head_dim, int tokens, int first_position);
  Layout layout(int tokens, int first_position) const;

  KVQuantParams params_;
  std::vector<float> levels_;      // sorted, in the normalized range [-1, 1]
  std::vector<float> thresholds_;  // midpoints between consecutive levels
};

}  // namespace ringkv
