// GPU kernels over Coupled-Quantization pages against their CPU twins: decode attention (lookup
// tables for keys, value centroids per lane) against partial_attention through CoupledCodec, on
// pages of several streams, several code widths and group sizes, head_dim 128 and 64, 1 to 8
// queries per KV head; page encoding against CoupledCodec::encode (the same nearest centroids, but for near-ties, where the
// two sums round apart); page decoding against CoupledCodec::decode_rows rounded to bf16, bit for
// bit. Outputs poisoned first; skipped where no CUDA device is present.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <utility>

#include "kernels/bit_packing.hpp"
#include "kernels/coupled_pages_gpu.hpp"
#include "kernels/cuda_check.hpp"
#include "kernels/half.hpp"
#include "kernels/decode_attention_coupled_gpu.hpp"
#include "kvstore/calibration.hpp"
#include "kvstore/codec.hpp"
#include "kvstore/codec_spec.hpp"
#include "paged_streams.hpp"

namespace ringkv {
namespace {

constexpr int kDim = 128, kPage = 128;

TEST(GpuDecodeAttentionCoupled, MatchesCpuTwin) {
  if (cuda_device_count() == 0) GTEST_SKIP() << "no CUDA device: GPU kernel test skipped";
  // Value groups narrower than a lane's channels (1 and 2 channels), key rows padded to 16 bytes
  // (16 channels), codes of any width unpacked, 16-bit codes (9 bits, head_dim 64), blocks of 4
  // warps (1-channel 8-bit codes), and keys and values coded apart (8-bit keys staged as 16-bit
  // words beside 9-bit values).
  const std::pair<int, const char*> cases[] = {{128, "cq:channels=8,bits=8"}, {128, "cq:channels=4,bits=6"},
                                               {128, "cq:channels=2,bits=8"}, {128, "cq:channels=8,bits=3"},
                                               {128, "cq:channels=1,bits=4"}, {128, "cq:channels=16,bits=5"},
                                               {128, "cq:channels=4,bits=8"}, {128, "cq:channels=1,bits=8"},
                                               {64, "cq:channels=8,bits=8"},  {64, "cq:channels=1,bits=6"},
                                               {64, "cq:channels=8,bits=9"},  {128, "cq:channels=8,bits=8|cq:channels=2,bits=9"}};
  for (const auto& [dim, text] : cases)
    for (int n_queries : {1, 3, 4, 8}) {
      const KVSpec spec = KVSpec::parse(text);
      struct Shape {
        int channels, bits, groups, codes;
      };
      const auto shape_of = [&](const CodecSpec& role_spec) {
        const int channels = role_spec.get_int("channels", 8, 1, 64), bits = role_spec.get_int("bits", 8, 1, 16);
        return Shape{channels, bits, dim / channels, 1 << bits};
      };
      const Shape ks = shape_of(spec.key), vs = shape_of(spec.value);
      const int streams = 3, n_pages = 41;
      // Centroids: Gaussian points, the same table for every stream (the kernel reads it per stream).
      // The kernel holds value centroids in bf16: here they are bf16 numbers, so that the comparison
      // is of its arithmetic (the rounding of real centroids shows in the forward-pass tests).
      Calibration calibration;
      std::vector<float> tables[2];
      for (Role role : {Role::Key, Role::Value}) {
        const CodecSpec& role_spec = role == Role::Key ? spec.key : spec.value;
        const Shape s = role == Role::Key ? ks : vs;
        std::vector<float>& table = tables[int(role)];
        table = test::gaussian(size_t(s.groups) * s.codes * s.channels, 7 + int(role));
        if (role == Role::Value)
          for (float& x : table) x = bf16_to_float(float_to_bf16(x));
        calibration.put(table_name(role_spec, 0, 0, role, "centroids"), {{s.groups, s.codes, s.channels}, table});
      }
      const CodecContext ctx{dim, kPage, 0, 0, &calibration};
      const auto key_codec = make_codec(spec.key, Role::Key, ctx), value_codec = make_codec(spec.value, Role::Value, ctx);
      const size_t slot = std::max(key_codec->encoded_bytes(kPage, 0), value_codec->encoded_bytes(kPage, 0));
      const test::PagedStreams paged =
          test::encode_streams(*key_codec, *value_codec, streams, n_pages, kPage, dim, n_queries, slot, false);
      const std::vector<float>& queries = paged.queries;
      const std::vector<AttentionState>& want = paged.want;
      const test::DevicePages d_pages = test::upload_pages(paged, streams, n_pages, slot);
      DeviceBuffer<float> d_kc(tables[int(Role::Key)].size()), d_vc(tables[int(Role::Value)].size());
      d_kc.upload(tables[int(Role::Key)].data());
      d_vc.upload(tables[int(Role::Value)].data());
      const std::vector<const float*> kc_ptrs(streams, d_kc.data()), vc_ptrs(streams, d_vc.data());
      DeviceBuffer<const float*> d_kcp(streams), d_vcp(streams);
      d_kcp.upload(kc_ptrs.data()), d_vcp.upload(vc_ptrs.data());
      DeviceBuffer<float> d_q(queries.size());
      d_q.upload(queries.data());
      const CoupledPagesGpu view{d_pages.keys.data(), d_pages.values.data(), d_kcp.data(), d_vcp.data(), streams, n_pages, kPage, dim,
                                 ks.channels, ks.bits, vs.channels, vs.bits};
      // The kernel's choice of splits, and one split (several tiles of keys, the running maximum rising).
      for (const int splits : {decode_attention_coupled_splits(view), 1}) {
        DeviceBuffer<float> split_out(size_t(splits) * queries.size()), split_lse(size_t(splits) * streams * n_queries);
        DeviceBuffer<float> out(queries.size()), lse(size_t(streams) * n_queries);
        split_out.poison(), split_lse.poison(), out.poison(), lse.poison();
        decode_attention_coupled_gpu(view, d_q.data(), n_queries, 1.0f / std::sqrt(float(dim)), splits, split_out.data(),
                                     split_lse.data(), out.data(), lse.data(), nullptr);
        RINGKV_CHECK_CUDA(cudaDeviceSynchronize());
        std::vector<float> got(queries.size()), got_lse(size_t(streams) * n_queries);
        out.download(got.data());
        lse.download(got_lse.data());
        for (int s = 0; s < streams; ++s) {
          EXPECT_LT(test::relative_error(got.data() + size_t(s) * n_queries * dim, want[s].out.data(), want[s].out.size()), 1e-4)
              << text << ", head_dim " << dim << ", " << n_queries << " queries, " << splits << " splits, stream " << s;
          for (int q = 0; q < n_queries; ++q)
            EXPECT_NEAR(got_lse[size_t(s) * n_queries + q], want[s].lse[q], 1e-4 * (1 + std::fabs(want[s].lse[q])))
                << text << ", head_dim " << dim << ", " << n_queries << " queries, " << splits << " splits, stream " << s;
        }
      }
    }
}


// Squared distance of x (channels) to centroid `code` of a group's table, in double.
double distance(const float* x, const float* table, uint32_t code, int channels) {
  double d = 0;
  for (int j = 0; j < channels; ++j) d += (double(x[j]) - table[size_t(code) * channels + j]) * (double(x[j]) - table[size_t(code) * channels + j]);
  return d;
}

TEST(GpuCoupledPages, EncodeAndDecodeMatchTheCpuCodec) {
  if (cuda_device_count() == 0) GTEST_SKIP() << "no CUDA device: GPU kernel test skipped";
  // Pages of 40 tokens leave a warp of the tensor-core search 8 rows past the end.
  for (int page : {kPage, 40}) {
    for (const char* text : {"cq:channels=8,bits=8", "cq:channels=4,bits=6", "cq:channels=2,bits=8", "cq:channels=8,bits=3",
                             "cq:channels=1,bits=4", "cq:channels=16,bits=5"}) {
      const CodecSpec spec = CodecSpec::parse(text);
      const int channels = spec.get_int("channels", 8, 1, 64), bits = spec.get_int("bits", 8, 1, 16);
      const int groups = kDim / channels, codes = 1 << bits, n_pages = 5, kv_heads = 1;
      Calibration calibration;
      const std::vector<float> table = test::gaussian(size_t(groups) * codes * channels, 11);
      calibration.put(table_name(spec, 0, 0, Role::Key, "centroids"), {{groups, codes, channels}, table});
      const auto codec = make_codec(spec, Role::Key, CodecContext{kDim, page, 0, 0, &calibration});
      const size_t slot = codec->encoded_bytes(page, 0);
      const std::vector<float> rows = test::structured_rows(size_t(n_pages) * page, kDim, 21, false);
      std::vector<uint8_t> want(n_pages * slot);
      for (int p = 0; p < n_pages; ++p) codec->encode(rows.data() + size_t(p) * page * kDim, page, p * page, want.data() + p * slot);

      DeviceBuffer<float> d_rows(rows.size()), d_table(table.size());
      d_rows.upload(rows.data()), d_table.upload(table.data());
      DeviceBuffer<uint8_t> d_pages(want.size());
      d_pages.poison();
      std::vector<uint8_t*> page_ptrs;
      for (int p = 0; p < n_pages; ++p) page_ptrs.push_back(d_pages.data() + p * slot);
      const std::vector<const float*> table_ptrs(n_pages, d_table.data());
      DeviceBuffer<uint8_t*> d_page_ptrs(n_pages);
      DeviceBuffer<const float*> d_table_ptrs(n_pages);
      d_page_ptrs.upload(page_ptrs.data()), d_table_ptrs.upload(table_ptrs.data());
      const CoupledShapeGpu shape{page, kDim, channels, bits};
      encode_coupled_pages_gpu(shape, d_rows.data(), n_pages, d_table_ptrs.data(), d_page_ptrs.data(), nullptr);
      RINGKV_CHECK_CUDA(cudaDeviceSynchronize());
      std::vector<uint8_t> got(want.size());
      d_pages.download(got.data());
      size_t differ = 0;
      const size_t per_page = size_t(page) * groups;
      for (int p = 0; p < n_pages; ++p)
        for (size_t i = 0; i < per_page; ++i) {
          const uint32_t a = read_code(got.data() + p * slot, i, bits), b = read_code(want.data() + p * slot, i, bits);
          if (a == b) continue;
          ++differ;
          const float* x = rows.data() + (size_t(p) * page + i / groups) * kDim + (i % groups) * channels;
          const float* group_table = table.data() + (i % groups) * size_t(codes) * channels;
          const double da = distance(x, group_table, a, channels), db = distance(x, group_table, b, channels);
          ASSERT_NEAR(da, db, 1e-5 * (1 + db)) << text << ", pages of " << page << ": page " << p << " code " << i << " is " << a << ", the CPU's " << b;
        }
      EXPECT_LE(differ, per_page * n_pages / 1000) << text << ", pages of " << page << ": " << differ << " near-tie codes differ";

      // Decoding the CPU's pages (as one KV head's pages) into bf16 rows.
      d_pages.upload(want.data());
      std::vector<const uint8_t*> const_ptrs(page_ptrs.begin(), page_ptrs.end());
      DeviceBuffer<const uint8_t*> d_const_ptrs(n_pages);
      d_const_ptrs.upload(const_ptrs.data());
      DeviceBuffer<uint16_t> d_decoded(size_t(n_pages) * page * kv_heads * kDim);
      d_decoded.poison();
      decode_coupled_pages_gpu(shape, d_const_ptrs.data(), n_pages, kv_heads, d_table_ptrs.data(), d_decoded.data(), nullptr);
      RINGKV_CHECK_CUDA(cudaDeviceSynchronize());
      std::vector<uint16_t> decoded(d_decoded.size());
      d_decoded.download(decoded.data());
      std::vector<float> cpu_rows(size_t(page) * kDim);
      for (int p = 0; p < n_pages; ++p) {
        codec->decode_rows({want.data() + p * slot, page, p * page}, 0, page, cpu_rows.data());
        for (size_t i = 0; i < cpu_rows.size(); ++i)
          ASSERT_EQ(decoded[size_t(p) * page * kDim + i], float_to_bf16(cpu_rows[i])) << text << ": page " << p << " element " << i;
      }
    }
  }
}

}  // namespace
}  // namespace ringkv
