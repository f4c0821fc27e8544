#pragma once
// Uniform asymmetric integer quantization, the KIVI-style baseline: keys per channel (a scale and
// minimum per channel for each group of `group` tokens), values per token (per group of `group`
// channels). Spec: "int:bits=2,group=128". Scales and minima are stored as fp16.
#include "kvstore/codec.hpp"

namespace ringkv {

class IntCodec final : public PageCodec {
 public:
  IntCodec(const CodecSpec& spec, Role role, const CodecContext& context);
  CodecKind kind() const override { return CodecKind::Int; }
  size_t encoded_bytes(int tokens, int first_position) const override;
  void encode(const float* rows, int tokens, int first_position, uint8_t* out) const override;
  void decode_rows(const PageView& page, int row_begin, int row_end, float* out) const override;
  // Straight from the codes: scores q.lo + sum_c (q[c] step[c]) code[t][c] per key group, and
  // values sum_t (p[t] step_t) code[t][c] + sum_t p[t] lo_t per value group (parameters read once).
  void key_scores(std::span<const PageView> pages, const float* queries, int n_queries, const RopeTable& rope,
                  float* scores) const override;
  void accumulate_values(std::span<const PageView> pages, const float* probs, int n_queries, float* out) const override;

 private:
  // Number of (scale, minimum) pairs for a page of `tokens` rows, and which pair element (t, c) uses.
  size_t param_count(int tokens) const;
  size_t param_index(int t, int c) const;
  // Codes [first, first + count) of a page as floats.
  void codes_as_floats(const uint8_t* codes, size_t first, int count, float* out) const;

  int bits_;
  int group_;
};

}  // namespace ringkv
