// GPU kernels over RVQ pages against their CPU twins, for codebook stacks of 2 to 16 levels, 8 to
// 256 codes, groups of 2, 4, 8 and 16 channels, keys stored before and after RoPE: decode attention
// against partial_attention through ResidualCodec (1 to 8 queries per KV head, several splits;
// codebook entries in fp16 and fp16 operands on the tensor cores); page encoding against
// ResidualCodec::encode (the pages decoded alike but for near-ties between codebook entries, whose
// difference carries into the later levels); page decoding against ResidualCodec::decode_rows (keys
// turned to their positions) rounded to bf16, fp32 codebook entries summed in the CPU's order. Outputs poisoned first; skipped where no CUDA device
// is present.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <iterator>
#include <vector>

#include "kernels/cuda_check.hpp"
#include "kernels/decode_attention_gpu.hpp"
#include "kernels/residual_pages_gpu.hpp"
#include "kernels/rope.hpp"
#include "kvstore/calibration.hpp"
#include "kvstore/codec.hpp"
#include "kvstore/codec_residual.hpp"
#include "page_kernel_check.hpp"
#include "paged_streams.hpp"

namespace ringkv {
namespace {

constexpr int kDim = 128, kPage = 128;
const char* const kSpecs[] = {"rvq:codes=64,depth=4,group=8", "rvq", "rvq:codes=16,depth=2,group=4,prerope=0",
                              "rvq:codes=32,depth=3,group=16", "rvq:codes=8,depth=2,group=2"};
// Decode attention also over a deep stack whose levels shrink slowly, so that its fp16 sums add many
// comparable terms.
const char* const kDeepSpec = "rvq:codes=16,depth=16,group=8";

ResidualShapeGpu shape_of(const CodecSpec& spec) {
  const ResidualParams p = ResidualParams::from(spec, kDim);
  return {p.depth, p.codes, p.group, p.pre_rope};
}

// Codebooks for layer 0, head 0 of both roles: Gaussian entries, each level a quarter the spread of
// the one before (the residuals shrink), or 0.85 of it in stacks deeper than 8.
Calibration codebooks_for(const CodecSpec& spec) {
  const ResidualShapeGpu s = shape_of(spec);
  Calibration calibration;
  for (Role role : {Role::Key, Role::Value}) {
    std::vector<float> books = test::gaussian(size_t(s.depth) * s.codes * s.group, 9 + int(role), 0.8f);
    const float shrink = s.depth > 8 ? 0.85f : 0.25f;
    for (int l = 0; l < s.depth; ++l)
      for (size_t i = 0; i < size_t(s.codes) * s.group; ++i) books[l * size_t(s.codes) * s.group + i] *= std::pow(shrink, float(l));
    calibration.put(table_name(spec, 0, 0, role, "codebooks"), {{s.depth, s.codes, s.group}, books});
  }
  return calibration;
}

struct DeviceBooks {
  DeviceBuffer<float> keys, values;
  DeviceBuffer<const float*> key_pointers, value_pointers;
};

// Each role's codebooks on the device, and `count` pointers to them.
DeviceBooks upload_books(const CodecSpec& spec, const Calibration& calibration, int count) {
  const ResidualShapeGpu s = shape_of(spec);
  const std::vector<float>& kb = calibration.get(table_name(spec, 0, 0, Role::Key, "codebooks"), {s.depth, s.codes, s.group}).data;
  const std::vector<float>& vb = calibration.get(table_name(spec, 0, 0, Role::Value, "codebooks"), {s.depth, s.codes, s.group}).data;
  DeviceBooks d{DeviceBuffer<float>(kb.size()), DeviceBuffer<float>(vb.size()), DeviceBuffer<const float*>(count),
                DeviceBuffer<const float*>(count)};
  d.keys.upload(kb.data()), d.values.upload(vb.data());
  const std::vector<const float*> kp(count, d.keys.data()), vp(count, d.values.data());
  d.key_pointers.upload(kp.data()), d.value_pointers.upload(vp.data());
  return d;
}

TEST(GpuDecodeAttentionResidual, MatchesCpuTwin) {
  if (cuda_device_count() == 0) GTEST_SKIP() << "no CUDA device: GPU kernel test skipped";
  const RopeTable rope = RopeTable::plain(kDim, 10000);  // partial_attention's in encode_streams
  DeviceBuffer<float> d_freq(rope.inv_freq.size());
  d_freq.upload(rope.inv_freq.data());
  std::vector<const char*> specs(std::begin(kSpecs), std::end(kSpecs));
  specs.push_back(kDeepSpec);
  for (const char* text : specs)
    for (int n_queries : {1, 2, 4, 8}) {
      const CodecSpec spec = CodecSpec::parse(text);
      const int streams = 3, n_pages = 7;
      const Calibration calibration = codebooks_for(spec);
      const CodecContext ctx{kDim, kPage, 0, 0, &calibration};
      const auto key_codec = make_codec(spec, Role::Key, ctx), value_codec = make_codec(spec, Role::Value, ctx);
      const size_t slot = key_codec->encoded_bytes(kPage, 0);
      const test::PagedStreams paged =
          test::encode_streams(*key_codec, *value_codec, streams, n_pages, kPage, kDim, n_queries, slot, true);
      const test::DevicePages d_pages = test::upload_pages(paged, streams, n_pages, slot);
      const DeviceBooks books = upload_books(spec, calibration, streams);
      const ResidualPagesGpu view{{d_pages.keys.data(), d_pages.values.data(), d_freq.data(), streams, n_pages},
                                  books.key_pointers.data(), books.value_pointers.data(), shape_of(spec)};
      test::check_decode_attention(
          paged, streams, n_queries, kDim, decode_attention_splits(n_pages, streams), 5e-3,
          [&](const float* q, int splits, float* split_out, float* split_lse, float* out, float* lse) {
            decode_attention_residual_gpu(view, q, n_queries, 1.0f / std::sqrt(float(kDim)), splits, split_out, split_lse, out, lse,
                                          nullptr);
          },
          text);
    }
}

TEST(GpuResidualPages, EncodeAndDecodeMatchTheCpuCodec) {
  if (cuda_device_count() == 0) GTEST_SKIP() << "no CUDA device: GPU kernel test skipped";
  const RopeTable rope = RopeTable::plain(kDim, 500000);
  DeviceBuffer<float> d_freq(rope.inv_freq.size());
  d_freq.upload(rope.inv_freq.data());
  const int n_pages = 2, kv_heads = 2, first_position = 256;
  for (const char* text : kSpecs)
    for (Role role : {Role::Key, Role::Value}) {
      const CodecSpec spec = CodecSpec::parse(text);
      const bool keys = role == Role::Key;
      const Calibration calibration = codebooks_for(spec);
      const auto codec = make_codec(spec, role, CodecContext{kDim, kPage, 0, 0, &calibration});
      const DeviceBooks books = upload_books(spec, calibration, kv_heads);
      const float* const* d_books = keys ? books.key_pointers.data() : books.value_pointers.data();
      // Near-ties between codebook entries carry into the later levels, and keys turned back on the
      // GPU may round their scale apart.
      const test::PageKernels kernels{
          [&](const float* rows, uint8_t* const* pages) {
            encode_residual_pages_gpu(shape_of(spec), keys, rows, n_pages, kv_heads, first_position, d_books, d_freq.data(), pages,
                                      nullptr);
          },
          [&](const uint8_t* const* pages, uint16_t* rows) {
            decode_residual_pages_gpu(shape_of(spec), keys, pages, n_pages, kv_heads, first_position, d_books, d_freq.data(), rows,
                                      nullptr);
          }};
      test::check_page_kernels(*codec, keys && ResidualParams::from(spec, kDim).pre_rope, rope, n_pages, kv_heads, first_position,
                               codec->encoded_bytes(kPage, 0), 41 + int(role), kernels, {3e-3, 20},
                               std::string(text) + ", " + role_name(role));
    }
}

}  // namespace
}  // namespace ringkv
