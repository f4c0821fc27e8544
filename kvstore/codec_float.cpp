#include "kvstore/codec_float.hpp"

#include <cstring>

#include "kernels/half.hpp"

namespace ringkv {

FloatCodec::FloatCodec(const CodecSpec& spec, Role role, const CodecContext& context)
    : PageCodec(spec, role, context),
      format_(spec.name() == "bf16" ? Format::BF16 : spec.name() == "fp16" ? Format::FP16 : Format::FP32),
      pre_rope_(spec.get_int("prerope", 0, 0, 1) == 1 && role == Role::Key) {}

size_t FloatCodec::encoded_bytes(int tokens, int) const {
  return static_cast<size_t>(tokens) * head_dim() * element_bytes();
}

void FloatCodec::encode(const float* rows, int tokens, int, uint8_t* out) const {
  const size_t n = static_cast<size_t>(tokens) * head_dim();
  if (format_ == Format::FP32) {
    if (n > 0) std::memcpy(out, rows, n * sizeof(float));
    return;
  }
  for (size_t i = 0; i < n; ++i) {
    const uint16_t h = format_ == Format::BF16 ? float_to_bf16(rows[i]) : float_to_fp16(rows[i]);
    std::memcpy(out + 2 * i, &h, 2);
  }
}

void FloatCodec::decode_rows(const PageView& page, int row_begin, int row_end, float* out) const {
  const size_t begin = static_cast<size_t>(row_begin) * head_dim();
  const size_t n = static_cast<size_t>(row_end - row_begin) * head_dim();
  if (format_ == Format::FP32) {
    if (n > 0) std::memcpy(out, page.bytes + 4 * begin, n * sizeof(float));
    return;
  }
  for (size_t i = 0; i < n; ++i) {
    uint16_t h;
    std::memcpy(&h, page.bytes + 2 * (begin + i), 2);
    out[i] = format_ == Format::BF16 ? bf16_to_float(h) : fp16_to_float(h);
  }
}

}  // namespace ringkv
