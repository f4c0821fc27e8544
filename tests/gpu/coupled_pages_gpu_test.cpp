// GPU decode attention over Coupled-Quantization pages (per-query lookup tables, per-centroid value
// masses) against its CPU twin, partial_attention through CoupledCodec, on pages of several
// streams, several code widths and group sizes, 1 to 8 queries per KV head; outputs poisoned first.
// Skipped where no CUDA device is present.
#include <gtest/gtest.h>

#include <cmath>

#include "kernels/cuda_check.hpp"
#include "kernels/decode_attention_coupled_gpu.hpp"
#include "kvstore/calibration.hpp"
#include "kvstore/codec.hpp"
#include "paged_streams.hpp"

namespace ringkv {
namespace {

constexpr int kDim = 128, kPage = 128;

TEST(GpuDecodeAttentionCoupled, MatchesCpuTwin) {
  if (cuda_device_count() == 0) GTEST_SKIP() << "no CUDA device: GPU kernel test skipped";
  for (const char* text : {"cq:channels=8,bits=8", "cq:channels=4,bits=6", "cq:channels=2,bits=8", "cq:channels=8,bits=3"})
    for (int n_queries : {1, 3, 4, 8}) {
      const CodecSpec spec = CodecSpec::parse(text);
      const int channels = spec.get_int("channels", 8, 1, 64), bits = spec.get_int("bits", 8, 1, 16);
      const int groups = kDim / channels, codes = 1 << bits, streams = 3, n_pages = 41;
      // Centroids: Gaussian points, the same table for every stream (the kernel reads it per stream).
      Calibration calibration;
      for (Role role : {Role::Key, Role::Value})
        calibration.put(table_name(spec, 0, 0, role, "centroids"),
                        {{groups, codes, channels}, test::gaussian(size_t(groups) * codes * channels, 7 + int(role))});
      const CodecContext ctx{kDim, kPage, 0, 0, &calibration};
      const auto key_codec = make_codec(spec, Role::Key, ctx), value_codec = make_codec(spec, Role::Value, ctx);
      const size_t slot = key_codec->encoded_bytes(kPage, 0);
      const test::PagedStreams paged =
          test::encode_streams(*key_codec, *value_codec, streams, n_pages, kPage, kDim, n_queries, slot, false);
      const std::vector<float>& queries = paged.queries;
      const std::vector<AttentionState>& want = paged.want;
      const test::DevicePages d_pages = test::upload_pages(paged, streams, n_pages, slot);
      DeviceBuffer<float> d_kc(size_t(groups) * codes * channels), d_vc(d_kc.size());
      d_kc.upload(calibration.get(table_name(spec, 0, 0, Role::Key, "centroids"), {groups, codes, channels}).data.data());
      d_vc.upload(calibration.get(table_name(spec, 0, 0, Role::Value, "centroids"), {groups, codes, channels}).data.data());
      const std::vector<const float*> kc_ptrs(streams, d_kc.data()), vc_ptrs(streams, d_vc.data());
      DeviceBuffer<const float*> d_kcp(streams), d_vcp(streams);
      d_kcp.upload(kc_ptrs.data()), d_vcp.upload(vc_ptrs.data());
      DeviceBuffer<float> d_q(queries.size());
      d_q.upload(queries.data());
      const CoupledPagesGpu view{d_pages.keys.data(), d_pages.values.data(), d_kcp.data(), d_vcp.data(), streams, n_pages, kPage, kDim,
                                 channels, bits, channels, bits};
      // The kernel's choice of splits, and one split (several tiles of keys, the running maximum rising).
      for (const int splits : {decode_attention_coupled_splits(view), 1}) {
        DeviceBuffer<float> split_out(size_t(splits) * queries.size()), split_lse(size_t(splits) * streams * n_queries);
        DeviceBuffer<float> out(queries.size()), lse(size_t(streams) * n_queries);
        split_out.poison(), split_lse.poison(), out.poison(), lse.poison();
        decode_attention_coupled_gpu(view, d_q.data(), n_queries, 1.0f / std::sqrt(float(kDim)), splits, split_out.data(),
                                     split_lse.data(), out.data(), lse.data(), nullptr);
        RINGKV_CHECK_CUDA(cudaDeviceSynchronize());
        std::vector<float> got(queries.size()), got_lse(size_t(streams) * n_queries);
        out.download(got.data());
        lse.download(got_lse.data());
        for (int s = 0; s < streams; ++s) {
          EXPECT_LT(test::relative_error(got.data() + size_t(s) * n_queries * kDim, want[s].out.data(), want[s].out.size()), 1e-4)
              << text << ", " << n_queries << " queries, " << splits << " splits, stream " << s;
          for (int q = 0; q < n_queries; ++q)
            EXPECT_NEAR(got_lse[size_t(s) * n_queries + q], want[s].lse[q], 1e-4 * (1 + std::fabs(want[s].lse[q])))
                << text << ", " << n_queries << " queries, " << splits << " splits, stream " << s;
        }
      }
    }
}

}  // namespace
}  // namespace ringkv
