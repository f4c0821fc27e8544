#include "kvstore/codec.hpp"

#include <algorithm>

#include "kernels/error.hpp"
#include "kvstore/codec_coupled.hpp"
#include "kvstore/codec_float.hpp"
#include "kvstore/codec_int.hpp"
#include "kvstore/codec_kvquant.hpp"
#include "kvstore/codec_residual.hpp"

namespace ringkv {

namespace {
// Rows decoded at a time by the default attention paths: small enough to stay in L1/L2.
constexpr int kDecodeBlock = 32;
}  // namespace

PageCodec::PageCodec(CodecSpec spec, Role role, const CodecContext& context)
    : spec_(std::move(spec)), role_(role), head_dim_(context.head_dim), page_size_(context.page_size) {
  RINGKV_REQUIRE(head_dim_ > 0 && head_dim_ % 2 == 0 && head_dim_ <= 1024,
                 "head_dim " + std::to_string(head_dim_) + " is not supported (even, at most 1024)");
  RINGKV_REQUIRE(page_size_ > 0 && page_size_ <= 4096, "page_size " + std::to_string(page_size_) + " is not in [1, 4096]");
}

size_t total_tokens(std::span<const PageView> pages) {
  size_t total = 0;
  for (const PageView& p : pages) total += p.tokens;
  return total;
}

void PageCodec::for_each_decoded_block(std::span<const PageView> pages, const RopeTable* rope,
                                       const std::function<void(const float*, int, size_t)>& visit) const {
  std::vector<float> block(static_cast<size_t>(kDecodeBlock) * head_dim_);
  size_t t0 = 0;
  for (const PageView& page : pages) {
    for (int r = 0; r < page.tokens; r += kDecodeBlock) {
      const int rows = std::min(kDecodeBlock, page.tokens - r);
      decode_rows(page, r, r + rows, block.data());
      if (rope && stores_pre_rope_keys()) apply_rope_rows(block.data(), rows, page.first_position + r, *rope);
      visit(block.data(), rows, t0 + r);
    }
    t0 += page.tokens;
  }
}

void PageCodec::key_scores(std::span<const PageView> pages, const float* queries, int n_queries,
                           const RopeTable& rope, float* scores) const {
  const int d = head_dim_;
  const size_t total = total_tokens(pages);
  for_each_decoded_block(pages, &rope, [&](const float* keys, int rows, size_t first) {
    for (int q = 0; q < n_queries; ++q) {
      const float* qv = queries + static_cast<size_t>(q) * d;
      float* out = scores + static_cast<size_t>(q) * total + first;
      for (int i = 0; i < rows; ++i) out[i] = dot(qv, keys + static_cast<size_t>(i) * d, d);
    }
  });
}

void PageCodec::accumulate_values(std::span<const PageView> pages, const float* probs, int n_queries,
                                  float* out) const {
  const int d = head_dim_;
  const size_t total = total_tokens(pages);
  for_each_decoded_block(pages, nullptr, [&](const float* values, int rows, size_t first) {
    for (int q = 0; q < n_queries; ++q) {
      const float* p = probs + static_cast<size_t>(q) * total + first;
      float* o = out + static_cast<size_t>(q) * d;
      for (int i = 0; i < rows; ++i) {
        if (p[i] == 0.0f) continue;
        const float* v = values + static_cast<size_t>(i) * d;
        for (int c = 0; c < d; ++c) o[c] += p[i] * v[c];
      }
    }
  });
}

std::vector<float> PageCodec::decode_page(const PageView& page) const {
  std::vector<float> rows(static_cast<size_t>(page.tokens) * head_dim_);
  decode_rows(page, 0, page.tokens, rows.data());
  return rows;
}

std::unique_ptr<PageCodec> make_codec(const CodecSpec& spec, Role role, const CodecContext& context) {
  std::unique_ptr<PageCodec> codec;
  const std::string& name = spec.name();
  if (name == "bf16" || name == "fp16" || name == "fp32") codec = std::make_unique<FloatCodec>(spec, role, context);
  else if (name == "int") codec = std::make_unique<IntCodec>(spec, role, context);
  else if (name == "kvquant") codec = std::make_unique<KVQuantCodec>(spec, role, context);
  else if (name == "cq") codec = std::make_unique<CoupledCodec>(spec, role, context);
  else if (name == "rvq") codec = std::make_unique<ResidualCodec>(spec, role, context);
  else fail("unknown codec '" + name + "' in spec '" + spec.text() + "' (known: bf16, fp16, fp32, int, kvquant, cq, rvq)", __FILE__, __LINE__);
  spec.reject_unused();
  return codec;
}

bool codec_needs_calibration(const CodecSpec& spec) {
  const std::string& n = spec.name();
  if (n == "kvquant") return KVQuantCodec::needs_calibration(spec);
  return n == "cq" || n == "rvq";
}

void learn_codec_tables(const CodecSpec& spec, Role role, const CodecContext& context, const RopeTable& rope,
                        const CalibrationSamples& samples, Calibration& calibration) {
  RINGKV_REQUIRE(samples.n_rows > 0, "no calibration samples for " + spec.text());
  const std::string& n = spec.name();
  if (n == "kvquant") KVQuantCodec::learn(spec, role, context, rope, samples, calibration);
  else if (n == "cq") CoupledCodec::learn(spec, role, context, rope, samples, calibration);
  else if (n == "rvq") ResidualCodec::learn(spec, role, context, rope, samples, calibration);
}

}  // namespace ringkv
