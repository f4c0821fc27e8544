// GPU kernels over KVQuant pages against their CPU twins, for uniform and learned (NUQ) levels,
// sparse outliers, sink tokens over whole and partial pages, keys stored before and after RoPE, 1 to
// 4 bits: decode attention against partial_attention through KVQuantCodec (1 to 8 queries per KV
// head, several splits; fp16 operands on the tensor cores, as the INT kernel's); page encoding against KVQuantCodec::encode (the pages decoded alike but
// for near-ties, where a value sits on a boundary between two levels); page decoding against
// KVQuantCodec::decode_rows (keys turned to their positions) rounded to bf16. Outputs poisoned
// first; skipped where no CUDA device is present.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <initializer_list>
#include <vector>

#include "kernels/cuda_check.hpp"
#include "kernels/decode_attention_gpu.hpp"
#include "kernels/kvquant_pages_gpu.hpp"
#include "kernels/rope.hpp"
#include "kvstore/calibration.hpp"
#include "kvstore/codec.hpp"
#include "kvstore/codec_kvquant.hpp"
#include "page_kernel_check.hpp"
#include "paged_streams.hpp"

namespace ringkv {
namespace {

constexpr int kDim = 128, kPage = 128;
const char* const kSpecs[] = {"kvquant:bits=4,nuq=0", "kvquant:bits=2,outliers=0.01,sink=1",
                              "kvquant:bits=3,nuq=0,outliers=0.05,sink=130,prerope=0", "kvquant:bits=1,outliers=0.02,sink=3"};
// Besides kSpecs, shapes of the kernel that reads the codes in place (as integers where the levels
// are even, through tables of level pairs else): with outliers, with a sink page (split 0 then goes
// to the tiled kernel), keys before and after RoPE.
const char* const kInPlaceSpecs[] = {"kvquant:bits=1,nuq=0", "kvquant:bits=1,nuq=0,outliers=0.01,prerope=0",
                                     "kvquant:bits=2,nuq=0", "kvquant:bits=2,nuq=0,outliers=0.01,sink=1",
                                     "kvquant:bits=4,nuq=0,outliers=0.03,prerope=0", "kvquant:bits=4,nuq=0,outliers=0.01,sink=200",
                                     "kvquant:bits=3,outliers=0.01,sink=1", "kvquant:bits=4,outliers=0.02,prerope=0",
                                     "kvquant:bits=2"};

// Learned levels for layer 0, head 0 of both roles: sorted, spread unevenly over [-1, 1].
Calibration levels_for(const CodecSpec& spec) {
  Calibration calibration;
  const int count = 1 << KVQuantParams::from(spec).bits;
  for (Role role : {Role::Key, Role::Value}) {
    std::vector<float> levels = test::gaussian(count, 5 + int(role), 0.5f);
    for (float& x : levels) x = std::clamp(x, -1.0f, 1.0f);
    std::sort(levels.begin(), levels.end());
    calibration.put(table_name(spec, 0, 0, role, "levels"), {{count}, levels});
  }
  return calibration;
}

// The largest page of either role from position 0 to first_position + n_pages pages.
size_t slot_for(const CodecSpec& spec, int n_pages) {
  size_t slot = 0;
  for (Role role : {Role::Key, Role::Value})
    for (int p = 0; p < n_pages; ++p) slot = std::max(slot, KVQuantCodec::page_bytes(spec, role, kDim, kPage, p * kPage));
  return (slot + 15) / 16 * 16;  // the pages 16-byte aligned, as the runtime's slots
}

struct DeviceLevels {
  DeviceBuffer<float> keys, values;
  DeviceBuffer<const float*> key_pointers, value_pointers;
};

// Each role's levels on the device, and `count` pointers to them.
DeviceLevels upload_levels(const PageCodec& key_codec, const PageCodec& value_codec, int count) {
  const auto& kl = static_cast<const KVQuantCodec&>(key_codec).levels();
  const auto& vl = static_cast<const KVQuantCodec&>(value_codec).levels();
  DeviceLevels d{DeviceBuffer<float>(kl.size()), DeviceBuffer<float>(vl.size()), DeviceBuffer<const float*>(count),
                 DeviceBuffer<const float*>(count)};
  d.keys.upload(kl.data()), d.values.upload(vl.data());
  const std::vector<const float*> kp(count, d.keys.data()), vp(count, d.values.data());
  d.key_pointers.upload(kp.data()), d.value_pointers.upload(vp.data());
  return d;
}

KVQuantShapeGpu shape_of(const CodecSpec& spec) {
  const KVQuantParams p = KVQuantParams::from(spec);
  return {p.bits, p.outliers, p.sink, p.pre_rope, !p.nuq};
}

// decode_attention_kvquant_gpu against partial_attention through KVQuantCodec on `streams` streams
// of n_pages pages (values times value_scale), at the kernel's own splits (a page each here), at
// each of more_splits, and at 1 (check_decode_attention's). fp16 operands on the tensor cores; the
// kernel that reads the codes in place also makes the keys and turns them by RoPE in fp16
// arithmetic, a few roundings each (5e-3).
void check_kvquant_decode(const char* text, int streams, int n_pages, int n_queries, std::initializer_list<int> more_splits,
                          float value_scale = 1.0f) {
  const RopeTable rope = RopeTable::plain(kDim, 10000);  // partial_attention's in encode_streams
  DeviceBuffer<float> d_freq(rope.inv_freq.size());
  d_freq.upload(rope.inv_freq.data());
  const CodecSpec spec = CodecSpec::parse(text);
  const Calibration calibration = levels_for(spec);
  const CodecContext ctx{kDim, kPage, 0, 0, &calibration};
  const auto key_codec = make_codec(spec, Role::Key, ctx), value_codec = make_codec(spec, Role::Value, ctx);
  const size_t slot = slot_for(spec, n_pages);
  const test::PagedStreams paged =
      test::encode_streams(*key_codec, *value_codec, streams, n_pages, kPage, kDim, n_queries, slot, true, value_scale);
  const test::DevicePages d_pages = test::upload_pages(paged, streams, n_pages, slot);
  const DeviceLevels levels = upload_levels(*key_codec, *value_codec, streams);
  const KVQuantPagesGpu view{{d_pages.keys.data(), d_pages.values.data(), d_freq.data(), streams, n_pages},
                             levels.key_pointers.data(), levels.value_pointers.data(), shape_of(spec)};
  std::vector<int> splits{decode_attention_kvquant_splits(n_pages, streams, view.shape)};
  splits.insert(splits.end(), more_splits);
  for (int n : splits)
    test::check_decode_attention(
        paged, streams, n_queries, kDim, n, 5e-3,
        [&](const float* q, int n_splits, float* split_out, float* split_lse, float* out, float* lse) {
          decode_attention_kvquant_gpu(view, q, n_queries, 1.0f / std::sqrt(float(kDim)), n_splits, split_out, split_lse, out, lse,
                                       nullptr);
        },
        text);
}

TEST(GpuDecodeAttentionKVQuant, MatchesCpuTwin) {
  if (cuda_device_count() == 0) GTEST_SKIP() << "no CUDA device: GPU kernel test skipped";
  std::vector<const char*> specs(std::begin(kSpecs), std::end(kSpecs));
  specs.insert(specs.end(), std::begin(kInPlaceSpecs), std::end(kInPlaceSpecs));
  for (const char* text : specs)
    for (int n_queries : {1, 2, 4, 8}) check_kvquant_decode(text, 3, 11, n_queries, {3});  // 3: runs of pages
}

// Value ranges wider than 65504 (the fp16 limit, which the stored ranges saturate at): a 1-bit
// step of even levels is the whole range, so the kernel halves the steps and doubles the codes.
TEST(GpuDecodeAttentionKVQuant, ValueRangesPastTheFp16Limit) {
  if (cuda_device_count() == 0) GTEST_SKIP() << "no CUDA device: GPU kernel test skipped";
  for (const char* text : {"kvquant:bits=1,nuq=0", "kvquant:bits=2,nuq=0,outliers=0.01"}) check_kvquant_decode(text, 2, 5, 4, {}, 3e4f);
}

TEST(GpuKVQuantPages, EncodeAndDecodeMatchTheCpuCodec) {
  if (cuda_device_count() == 0) GTEST_SKIP() << "no CUDA device: GPU kernel test skipped";
  const RopeTable rope = RopeTable::plain(kDim, 500000);
  DeviceBuffer<float> d_freq(rope.inv_freq.size());
  d_freq.upload(rope.inv_freq.data());
  const int n_pages = 3, kv_heads = 2, first_position = 0;
  for (const char* text : kSpecs)
    for (Role role : {Role::Key, Role::Value}) {
      const CodecSpec spec = CodecSpec::parse(text);
      const bool keys = role == Role::Key;
      const Calibration calibration = levels_for(spec);
      const auto codec = make_codec(spec, role, CodecContext{kDim, kPage, 0, 0, &calibration});
      const DeviceLevels levels = upload_levels(*codec, *codec, kv_heads);
      const float* const* d_levels = keys ? levels.key_pointers.data() : levels.value_pointers.data();
      // Near-ties a level apart and, for keys turned back from RoPE on the GPU, float rounding.
      const test::PageKernels kernels{
          [&](const float* rows, uint8_t* const* pages) {
            encode_kvquant_pages_gpu(shape_of(spec), keys, rows, n_pages, kv_heads, first_position, d_levels, d_freq.data(), pages,
                                     nullptr);
          },
          [&](const uint8_t* const* pages, uint16_t* rows) {
            decode_kvquant_pages_gpu(shape_of(spec), keys, pages, n_pages, kv_heads, first_position, d_levels, d_freq.data(), rows,
                                     nullptr);
          }};
      test::check_page_kernels(*codec, keys && KVQuantParams::from(spec).pre_rope, rope, n_pages, kv_heads, first_position,
                               slot_for(spec, n_pages), 31 + int(role), kernels, {1e-3, 2},
                               std::string(text) + ", " + role_name(role));
    }
}

}  // namespace
}  // namespace ringkv
