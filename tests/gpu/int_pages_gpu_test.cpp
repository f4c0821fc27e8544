// GPU kernels over INT-coded pages against their CPU twins: decode attention (partial_attention
// over the same pages through IntCodec), page encoding (IntCodec::encode, byte for byte) and
// page decoding to bf16 rows (IntCodec::decode_page, rounded to bf16, bit for bit);
// skipped where no CUDA device is present. The GPU multiplies fp16
// operands (exact codes, rounded query x scale and probability x scale products) with fp32
// accumulation, hence an fp16-sized bound.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>

#include "kernels/cuda_check.hpp"
#include "kernels/decode_attention_gpu.hpp"
#include "kvstore/codec.hpp"
#include "paged_streams.hpp"

namespace ringkv {
namespace {

constexpr int kDim = 128, kPage = 128;

// Sealed INT pages and, with tails, a bf16 tail per stream of 0, 37 and 74 tokens, as a shard holds them.
TEST(GpuDecodeAttentionInt, MatchesCpuTwin) {
  if (cuda_device_count() == 0) GTEST_SKIP() << "no CUDA device: GPU kernel test skipped";
  for (bool tails : {false, true})
  for (int bits : {1, 2, 3, 4})
    for (int n_queries : {1, 4, 8}) {
      const int streams = 3, n_pages = 37;  // pages not a multiple of the splits
      const CodecContext ctx{kDim, kPage, 0, 0, nullptr};
      const CodecSpec spec = CodecSpec::parse("int:bits=" + std::to_string(bits));
      const auto key_codec = make_codec(spec, Role::Key, ctx), value_codec = make_codec(spec, Role::Value, ctx);
      const size_t slot = (std::max(key_codec->encoded_bytes(kPage, 0), value_codec->encoded_bytes(kPage, 0)) + 15) / 16 * 16;
      test::PagedStreams paged =
          test::encode_streams(*key_codec, *value_codec, streams, n_pages, kPage, kDim, n_queries, slot, true);
      const std::vector<float>& queries = paged.queries;
      std::vector<AttentionState>& want = paged.want;
      const auto tail_codec = make_codec(CodecSpec::parse("bf16"), Role::Key, ctx);
      std::vector<std::vector<uint8_t>> tail_keys(streams), tail_values(streams);
      std::vector<int> tail_tokens(streams, 0);
      const RopeTable rope = RopeTable::plain(kDim, 10000);
      const float scale = 1.0f / std::sqrt(float(kDim));
      for (int s = 0; s < streams; ++s) {
        const float* q = queries.data() + size_t(s) * n_queries * kDim;
        if (tails) {
          const int n = 37 * s;
          tail_tokens[s] = n;
          const std::vector<float> tk = test::structured_rows(size_t(n), kDim, 400 + s), tv = test::structured_rows(size_t(n), kDim, 500 + s);
          tail_keys[s].resize(std::max<size_t>(tail_codec->encoded_bytes(n, 0), 2));
          tail_values[s].resize(tail_keys[s].size());
          tail_codec->encode(tk.data(), n, n_pages * kPage, tail_keys[s].data());
          tail_codec->encode(tv.data(), n, n_pages * kPage, tail_values[s].data());
          const PageView tkv{tail_keys[s].data(), n, n_pages * kPage}, tvv{tail_values[s].data(), n, n_pages * kPage};
          if (n > 0) merge_state(want[s], partial_attention({tail_codec.get(), tail_codec.get(), {&tkv, 1}, {&tvv, 1}}, q,
                                                            n_queries, rope, scale));
        }
      }
      const test::DevicePages d_pages = test::upload_pages(paged, streams, n_pages, slot);
      DeviceBuffer<float> d_q(queries.size());
      d_q.upload(queries.data());
      std::vector<DeviceBuffer<uint8_t>> d_tails;
      std::vector<const uint16_t*> tk_ptrs, tv_ptrs;
      for (int s = 0; s < streams; ++s) {
        for (auto* bytes : {&tail_keys[s], &tail_values[s]}) {
          d_tails.emplace_back(bytes->size());
          d_tails.back().upload(bytes->data());
          (bytes == &tail_keys[s] ? tk_ptrs : tv_ptrs).push_back(reinterpret_cast<const uint16_t*>(d_tails.back().data()));
        }
      }
      DeviceBuffer<const uint16_t*> d_tk(streams), d_tv(streams);
      DeviceBuffer<int> d_tn(streams);
      d_tk.upload(tk_ptrs.data()), d_tv.upload(tv_ptrs.data()), d_tn.upload(tail_tokens.data());
      IntPagesGpu view{d_pages.keys.data(), d_pages.values.data(), streams, n_pages, bits};
      if (tails) view.tail_keys = d_tk.data(), view.tail_values = d_tv.data(), view.tail_tokens = d_tn.data();
      // 5 splits of 8 pages (the last of 5); 36 of 2, the last 17 with no pages.
      for (const int splits : {5, 36}) {
        const int states = splits + (tails ? 1 : 0);
        DeviceBuffer<float> split_out(size_t(states) * queries.size()), split_lse(size_t(states) * streams * n_queries);
        DeviceBuffer<float> out(queries.size()), lse(size_t(streams) * n_queries);
        split_out.poison(), split_lse.poison(), out.poison(), lse.poison();
        decode_attention_int_gpu(view, d_q.data(), n_queries,
                                 1.0f / std::sqrt(float(kDim)), splits, split_out.data(), split_lse.data(), out.data(),
                                 lse.data(), nullptr);
        RINGKV_CHECK_CUDA(cudaDeviceSynchronize());
        std::vector<float> got(queries.size()), got_lse(size_t(streams) * n_queries);
        out.download(got.data());
        lse.download(got_lse.data());
        for (int s = 0; s < streams; ++s) {
          const float* g = got.data() + size_t(s) * n_queries * kDim;
          EXPECT_LT(test::relative_error(g, want[s].out.data(), want[s].out.size()), 3e-3)
              << bits << " bits, " << splits << " splits, " << n_queries << " queries, stream " << s << (tails ? ", with tails" : "");
          for (int q = 0; q < n_queries; ++q)
            EXPECT_NEAR(got_lse[size_t(s) * n_queries + q], want[s].lse[q], 3e-3 * (1 + std::fabs(want[s].lse[q])));
        }
      }
    }
}

// Pages whose every vector (a channel over the tokens, a token over the channels) steps through
// 0, s/2, s, ..., (levels - 1) s with s a power of two: each step is exactly s, so half of the
// quotients (v - lo) / step fall exactly halfway between two codes and round to the even one.
std::vector<float> halfway_rows(int n_pages, int bits) {
  const int levels = 1 << bits, period = 2 * levels - 1;
  std::vector<float> rows(size_t(n_pages) * kPage * kDim);
  for (size_t r = 0; r < size_t(n_pages) * kPage; ++r)
    for (int c = 0; c < kDim; ++c) rows[r * kDim + c] = static_cast<float>((r + c) % period) * 0.0625f;
  return rows;
}

TEST(GpuEncodeInt, WritesTheBytesTheCpuCodecWrites) {
  if (cuda_device_count() == 0) GTEST_SKIP() << "no CUDA device: GPU kernel test skipped";
  const int n_pages = 19;
  for (int bits : {1, 2, 3, 4})
    for (const bool halfway : {false, true})
      for (Role role : {Role::Key, Role::Value}) {
        const std::vector<float> rows =
            halfway ? halfway_rows(n_pages, bits) : test::structured_rows(size_t(n_pages) * kPage, kDim, 77);
        DeviceBuffer<float> d_rows(rows.size());
        d_rows.upload(rows.data());
        const auto codec = make_codec(CodecSpec::parse("int:bits=" + std::to_string(bits)), role, {kDim, kPage, 0, 0, nullptr});
        const size_t page_bytes = codec->encoded_bytes(kPage, 0), slot = (page_bytes + 15) / 16 * 16;
        std::vector<uint8_t> want(n_pages * slot, 0);
        for (int p = 0; p < n_pages; ++p) codec->encode(rows.data() + size_t(p) * kPage * kDim, kPage, p * kPage, want.data() + p * slot);
        DeviceBuffer<uint8_t> out(want.size());
        out.poison(0xA5);
        std::vector<uint8_t*> ptrs;
        for (int p = 0; p < n_pages; ++p) ptrs.push_back(out.data() + p * slot);
        DeviceBuffer<uint8_t*> d_ptrs(ptrs.size());
        d_ptrs.upload(ptrs.data());
        encode_int_pages_gpu(d_rows.data(), n_pages, bits, role == Role::Key, d_ptrs.data(), nullptr);
        RINGKV_CHECK_CUDA(cudaDeviceSynchronize());
        std::vector<uint8_t> got(want.size());
        out.download(got.data());
        for (int p = 0; p < n_pages; ++p)
          ASSERT_EQ(0, std::memcmp(got.data() + p * slot, want.data() + p * slot, page_bytes))
              << bits << " bits, " << (role == Role::Key ? "keys" : "values") << (halfway ? ", halfway values" : "")
              << ", page " << p;
      }
}

TEST(GpuDecodeIntPages, WritesTheRowsTheCpuCodecDecodes) {
  if (cuda_device_count() == 0) GTEST_SKIP() << "no CUDA device: GPU kernel test skipped";
  const int n_pages = 5, kv_heads = 3;  // page k of KV head h at k * kv_heads + h
  for (int bits : {1, 2, 3, 4})
    for (Role role : {Role::Key, Role::Value}) {
      const auto codec = make_codec(CodecSpec::parse("int:bits=" + std::to_string(bits)), role, {kDim, kPage, 0, 0, nullptr});
      const size_t page_bytes = codec->encoded_bytes(kPage, 0), slot = (page_bytes + 15) / 16 * 16;
      std::vector<uint8_t> pages(size_t(n_pages) * kv_heads * slot, 0);
      std::vector<uint16_t> want(size_t(n_pages) * kPage * kv_heads * kDim);
      for (int k = 0; k < n_pages; ++k)
        for (int h = 0; h < kv_heads; ++h) {
          const std::vector<float> rows = test::structured_rows(kPage, kDim, 1000 + k * kv_heads + h);
          uint8_t* bytes = pages.data() + (size_t(k) * kv_heads + h) * slot;
          codec->encode(rows.data(), kPage, k * kPage, bytes);
          const std::vector<float> decoded = codec->decode_page({bytes, kPage, k * kPage});
          for (int t = 0; t < kPage; ++t)
            for (int c = 0; c < kDim; ++c)
              want[((size_t(k) * kPage + t) * kv_heads + h) * kDim + c] = float_to_bf16(decoded[size_t(t) * kDim + c]);
        }
      DeviceBuffer<uint8_t> d_pages(pages.size());
      d_pages.upload(pages.data());
      std::vector<const uint8_t*> ptrs;
      for (size_t i = 0; i < size_t(n_pages) * kv_heads; ++i) ptrs.push_back(d_pages.data() + i * slot);
      DeviceBuffer<const uint8_t*> d_ptrs(ptrs.size());
      d_ptrs.upload(ptrs.data());
      DeviceBuffer<uint16_t> d_rows(want.size());
      d_rows.poison();
      decode_int_pages_gpu(d_ptrs.data(), n_pages, kv_heads, bits, role == Role::Key, d_rows.data(), nullptr);
      RINGKV_CHECK_CUDA(cudaDeviceSynchronize());
      std::vector<uint16_t> got(want.size());
      d_rows.download(got.data());
      EXPECT_EQ(got, want) << bits << " bits, " << (role == Role::Key ? "keys" : "values");
    }
}

}  // namespace
}  // namespace ringkv
