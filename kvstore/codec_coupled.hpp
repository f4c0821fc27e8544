#pragma once
// Coupled Quantization: the channels of a head are split into contiguous groups of `channels`, and
// each group is quantized jointly to one of 2^bits centroids learned per layer, head and group by
// (optionally sensitivity-weighted) k-means. channels=8, bits=8 stores 1 bit per channel. Keys are
// stored after RoPE so that attention can use per-query lookup tables: score = sum over groups of
// table[g][code_g], and values are accumulated per centroid before one product with the centroids.
// Spec: "cq:channels=8,bits=8,weights=uniform|attention".
#include <vector>

#include "kvstore/codec.hpp"

namespace ringkv {

class CoupledCodec final : public PageCodec {
 public:
  CoupledCodec(const CodecSpec& spec, Role role, const CodecContext& context);
  CodecKind kind() const override { return CodecKind::Coupled; }
  size_t encoded_bytes(int tokens, int first_position) const override;
  size_t codebook_bytes() const override { return centroids_.size() * sizeof(float); }
  void encode(const float* rows, int tokens, int first_position, uint8_t* out) const override;
  void decode_rows(const PageView& page, int row_begin, int row_end, float* out) const override;
  void key_scores(std::span<const PageView> pages, const float* queries, int n_queries, const RopeTable& rope,
                  float* scores) const override;
  void accumulate_values(std::span<const PageView> pages, const float* probs, int n_queries, float* out) const override;

  static void learn(const CodecSpec& spec, Role role, const CodecContext& context, const RopeTable& rope,
                    const CalibrationSamples& samples, Calibration& calibration);

 private:
  void read_token_codes(const PageView& page, int t, uint32_t* codes) const;
  const float* centroid(int group, uint32_t code) const {
    return centroids_.data() + (static_cast<size_t>(group) * codes_ + code) * channels_;
  }

  int channels_, bits_, codes_, groups_;
  std::vector<float> centroids_;  // [groups][codes][channels]
};

}  // namespace ringkv
