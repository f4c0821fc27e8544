// GPU kernels over KVQuant pages against their CPU twins, for uniform and learned (NUQ) levels,
// sparse outliers, sink tokens over whole and partial pages, keys stored before and after RoPE, 1 to
// 4 bits: decode attention against partial_attention through KVQuantCodec (1 to 8 queries per KV
// head, several splits); page encoding against KVQuantCodec::encode (the pages decoded alike but
// for near-ties, where a value sits on a boundary between two levels); page decoding against
// KVQuantCodec::decode_rows (keys turned to their positions) rounded to bf16. Outputs poisoned
// first; skipped where no CUDA device is present.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

#include "kernels/cuda_check.hpp"
#include "kernels/decode_attention_gpu.hpp"
#include "kernels/half.hpp"
#include "kernels/kvquant_pages_gpu.hpp"
#include "kernels/rope.hpp"
#include "kvstore/calibration.hpp"
#include "kvstore/codec.hpp"
#include "kvstore/codec_kvquant.hpp"
#include "paged_streams.hpp"

namespace ringkv {
namespace {

constexpr int kDim = 128, kPage = 128;
const char* const kSpecs[] = {"kvquant:bits=4,nuq=0", "kvquant:bits=2,outliers=0.01,sink=1",
                              "kvquant:bits=3,nuq=0,outliers=0.05,sink=130,prerope=0", "kvquant:bits=1,outliers=0.02,sink=3"};

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
  return slot;
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
  return {p.bits, p.outliers, p.sink, p.pre_rope};
}

TEST(GpuDecodeAttentionKVQuant, MatchesCpuTwin) {
  if (cuda_device_count() == 0) GTEST_SKIP() << "no CUDA device: GPU kernel test skipped";
  const RopeTable rope = RopeTable::plain(kDim, 10000);  // partial_attention's in encode_streams
  DeviceBuffer<float> d_freq(rope.inv_freq.size());
  d_freq.upload(rope.inv_freq.data());
  for (const char* text : kSpecs)
    for (int n_queries : {1, 2, 4, 8}) {
      const CodecSpec spec = CodecSpec::parse(text);
      const int streams = 3, n_pages = 11;
      const Calibration calibration = levels_for(spec);
      const CodecContext ctx{kDim, kPage, 0, 0, &calibration};
      const auto key_codec = make_codec(spec, Role::Key, ctx), value_codec = make_codec(spec, Role::Value, ctx);
      const size_t slot = slot_for(spec, n_pages);
      const test::PagedStreams paged =
          test::encode_streams(*key_codec, *value_codec, streams, n_pages, kPage, kDim, n_queries, slot, true);
      const test::DevicePages d_pages = test::upload_pages(paged, streams, n_pages, slot);
      const DeviceLevels levels = upload_levels(*key_codec, *value_codec, streams);
      DeviceBuffer<float> d_q(paged.queries.size());
      d_q.upload(paged.queries.data());
      KVQuantPagesGpu view;
      view.key_pages = d_pages.keys.data(), view.value_pages = d_pages.values.data();
      view.key_levels = levels.key_pointers.data(), view.value_levels = levels.value_pointers.data();
      view.inv_freq = d_freq.data(), view.streams = streams, view.n_pages = n_pages, view.shape = shape_of(spec);
      for (const int splits : {decode_attention_splits(n_pages, streams), 1}) {
        DeviceBuffer<float> split_out(size_t(splits) * paged.queries.size()), split_lse(size_t(splits) * streams * n_queries);
        DeviceBuffer<float> out(paged.queries.size()), lse(size_t(streams) * n_queries);
        split_out.poison(), split_lse.poison(), out.poison(), lse.poison();
        decode_attention_kvquant_gpu(view, d_q.data(), n_queries, 1.0f / std::sqrt(float(kDim)), splits, split_out.data(),
                                     split_lse.data(), out.data(), lse.data(), nullptr);
        RINGKV_CHECK_CUDA(cudaDeviceSynchronize());
        std::vector<float> got(paged.queries.size()), got_lse(size_t(streams) * n_queries);
        out.download(got.data());
        lse.download(got_lse.data());
        for (int s = 0; s < streams; ++s) {
          const AttentionState& want = paged.want[s];
          EXPECT_LT(test::relative_error(got.data() + size_t(s) * n_queries * kDim, want.out.data(), want.out.size()), 1e-4)
              << text << ", " << n_queries << " queries, " << splits << " splits, stream " << s;
          for (int q = 0; q < n_queries; ++q)
            EXPECT_NEAR(got_lse[size_t(s) * n_queries + q], want.lse[q], 1e-4 * (1 + std::fabs(want.lse[q])))
                << text << ", " << n_queries << " queries, " << splits << " splits, stream " << s;
        }
      }
    }
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
      const bool keys = role == Role::Key, turned = keys && KVQuantParams::from(spec).pre_rope;
      const Calibration calibration = levels_for(spec);
      const auto codec = make_codec(spec, role, CodecContext{kDim, kPage, 0, 0, &calibration});
      const size_t slot = slot_for(spec, n_pages);
      // Rows as stored ([page][head][token][channel]) and as the cache hands them over (keys after RoPE).
      std::vector<float> stored = test::structured_rows(size_t(n_pages) * kv_heads * kPage, kDim, 31 + int(role), true);
      std::vector<float> given = stored;
      std::vector<uint8_t> want(size_t(n_pages) * kv_heads * slot);
      for (int b = 0; b < n_pages * kv_heads; ++b) {
        const int position = first_position + b / kv_heads * kPage;
        if (turned) apply_rope_rows(given.data() + size_t(b) * kPage * kDim, kPage, position, rope);
        codec->encode(stored.data() + size_t(b) * kPage * kDim, kPage, position, want.data() + b * slot);
      }
      const DeviceLevels levels = upload_levels(*codec, *codec, kv_heads);
      const float* const* d_levels = keys ? levels.key_pointers.data() : levels.value_pointers.data();
      DeviceBuffer<float> d_rows(given.size());
      d_rows.upload(given.data());
      DeviceBuffer<uint8_t> d_pages(want.size());
      d_pages.poison();
      std::vector<uint8_t*> page_ptrs;
      for (int b = 0; b < n_pages * kv_heads; ++b) page_ptrs.push_back(d_pages.data() + b * slot);
      DeviceBuffer<uint8_t*> d_page_ptrs(page_ptrs.size());
      d_page_ptrs.upload(page_ptrs.data());
      encode_kvquant_pages_gpu(shape_of(spec), keys, d_rows.data(), n_pages, kv_heads, first_position, d_levels, d_freq.data(),
                               d_page_ptrs.data(), nullptr);
      RINGKV_CHECK_CUDA(cudaDeviceSynchronize());
      std::vector<uint8_t> got(want.size());
      d_pages.download(got.data());
      // Both encodings decoded by the CPU codec: equal but for near-ties (a level apart) and, for
      // keys turned back from RoPE on the GPU, float rounding.
      size_t differ = 0;
      double worst = 0;
      std::vector<float> a(size_t(kPage) * kDim), b(a.size());
      for (int p = 0; p < n_pages * kv_heads; ++p) {
        const int position = first_position + p / kv_heads * kPage;
        codec->decode_rows({got.data() + p * slot, kPage, position}, 0, kPage, a.data());
        codec->decode_rows({want.data() + p * slot, kPage, position}, 0, kPage, b.data());
        for (size_t i = 0; i < a.size(); ++i) {
          const double d = std::fabs(a[i] - b[i]);
          worst = std::max(worst, d);
          differ += d > 1e-3 * (1 + std::fabs(b[i]));
        }
      }
      const size_t elements = size_t(n_pages) * kv_heads * kPage * kDim;
      EXPECT_LE(differ, elements / 500) << text << ", " << role_name(role) << ": " << differ << " elements differ, worst by " << worst;

      // Decoding the CPU's pages into bf16 rows [page * 128 + token][head][channel].
      d_pages.upload(want.data());
      std::vector<const uint8_t*> const_ptrs(page_ptrs.begin(), page_ptrs.end());
      DeviceBuffer<const uint8_t*> d_const_ptrs(const_ptrs.size());
      d_const_ptrs.upload(const_ptrs.data());
      DeviceBuffer<uint16_t> d_decoded(elements);
      d_decoded.poison();
      decode_kvquant_pages_gpu(shape_of(spec), keys, d_const_ptrs.data(), n_pages, kv_heads, first_position, d_levels, d_freq.data(),
                               d_decoded.data(), nullptr);
      RINGKV_CHECK_CUDA(cudaDeviceSynchronize());
      std::vector<uint16_t> decoded(elements);
      d_decoded.download(decoded.data());
      for (int p = 0; p < n_pages * kv_heads; ++p) {
        const int k = p / kv_heads, h = p % kv_heads, position = first_position + k * kPage;
        codec->decode_rows({want.data() + p * slot, kPage, position}, 0, kPage, b.data());
        if (turned) apply_rope_rows(b.data(), kPage, position, rope);
        for (int t = 0; t < kPage; ++t)
          for (int c = 0; c < kDim; ++c) {
            const float x = bf16_to_float(decoded[((size_t(k) * kPage + t) * kv_heads + h) * kDim + c]), y = b[size_t(t) * kDim + c];
            ASSERT_LE(std::fabs(x - y), std::fabs(y) / 128 + 1e-5)
                << text << ", " << role_name(role) << ": page " << k << " head " << h << " token " << t << " channel " << c;
          }
      }
    }
}

}  // namespace
}  // namespace ringkv
