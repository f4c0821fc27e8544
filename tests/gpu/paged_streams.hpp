#pragma once
// Sealed pages of several streams encoded by a codec on the CPU, queries for each stream, and the
// CPU twin's partial attention over each stream's pages: the setup of the decode-attention kernel
// tests, and the pages uploaded. Pages live in one buffer, keys then values, stream-major, `slot`
// bytes apart.
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <string>
#include <vector>

#include "kernels/cuda_check.hpp"
#include "kvstore/partial_attention.hpp"
#include "../test_util.hpp"

namespace ringkv::test {

struct PagedStreams {
  std::vector<uint8_t> bytes;        // [2][streams][n_pages] slots
  std::vector<float> queries;        // post-RoPE [streams][n_queries][head_dim]
  std::vector<AttentionState> want;  // per stream
};

// value_scale multiplies the values (large ones reach the fp16 limit of the codecs' ranges).
inline PagedStreams encode_streams(const PageCodec& key_codec, const PageCodec& value_codec, int streams, int n_pages,
                                   int page, int head_dim, int n_queries, size_t slot, bool outliers, float value_scale = 1.0f) {
  PagedStreams r{std::vector<uint8_t>(2 * slot * streams * n_pages), std::vector<float>(size_t(streams) * n_queries * head_dim), {}};
  for (int s = 0; s < streams; ++s) {
    const std::vector<float> keys = structured_rows(size_t(n_pages) * page, head_dim, 100 + s, outliers);
    std::vector<float> values = structured_rows(size_t(n_pages) * page, head_dim, 200 + s, outliers);
    for (float& x : values) x *= value_scale;
    std::vector<PageView> kv, vv;
    for (int p = 0; p < n_pages; ++p) {
      uint8_t* k = r.bytes.data() + (size_t(s) * n_pages + p) * slot;
      uint8_t* v = r.bytes.data() + (size_t(streams + s) * n_pages + p) * slot;
      key_codec.encode(keys.data() + size_t(p) * page * head_dim, page, p * page, k);
      value_codec.encode(values.data() + size_t(p) * page * head_dim, page, p * page, v);
      kv.push_back({k, page, p * page});
      vv.push_back({v, page, p * page});
    }
    const std::vector<float> q = gaussian(size_t(n_queries) * head_dim, 300 + s, 0.3f);
    std::copy(q.begin(), q.end(), r.queries.begin() + size_t(s) * n_queries * head_dim);
    r.want.push_back(partial_attention({&key_codec, &value_codec, kv, vv}, q.data(), n_queries,
                                       RopeTable::plain(head_dim, 10000), 1.0f / std::sqrt(float(head_dim))));
  }
  return r;
}

// The pages on the device, and the kernels' arrays of page pointers [streams][n_pages] per role.
struct DevicePages {
  DeviceBuffer<uint8_t> bytes;
  DeviceBuffer<const uint8_t*> keys, values;
};

inline DevicePages upload_pages(const PagedStreams& paged, int streams, int n_pages, size_t slot) {
  DevicePages d{DeviceBuffer<uint8_t>(paged.bytes.size()), DeviceBuffer<const uint8_t*>(size_t(streams) * n_pages),
                DeviceBuffer<const uint8_t*>(size_t(streams) * n_pages)};
  d.bytes.upload(paged.bytes.data());
  std::vector<const uint8_t*> key_ptrs, value_ptrs;
  for (int i = 0; i < streams * n_pages; ++i) {
    key_ptrs.push_back(d.bytes.data() + size_t(i) * slot);
    value_ptrs.push_back(d.bytes.data() + size_t(streams * n_pages + i) * slot);
  }
  d.keys.upload(key_ptrs.data());
  d.values.upload(value_ptrs.data());
  return d;
}

// Runs a decode-attention kernel over the uploaded pages with its own choice of splits and with one
// split (outputs poisoned first) and compares every stream's merged state with the CPU twin's.
// launch(queries, splits, split_out, split_lse, out, lse) on the device.
using DecodeLaunch = std::function<void(const float*, int, float*, float*, float*, float*)>;
inline void check_decode_attention(const PagedStreams& paged, int streams, int n_queries, int head_dim, int splits,
                                   double tolerance, const DecodeLaunch& launch, const std::string& what) {
  DeviceBuffer<float> d_q(paged.queries.size());
  d_q.upload(paged.queries.data());
  for (const int n_splits : {splits, 1}) {
    DeviceBuffer<float> split_out(size_t(n_splits) * paged.queries.size()), split_lse(size_t(n_splits) * streams * n_queries);
    DeviceBuffer<float> out(paged.queries.size()), lse(size_t(streams) * n_queries);
    split_out.poison(), split_lse.poison(), out.poison(), lse.poison();
    launch(d_q.data(), n_splits, split_out.data(), split_lse.data(), out.data(), lse.data());
    RINGKV_CHECK_CUDA(cudaDeviceSynchronize());
    std::vector<float> got(paged.queries.size()), got_lse(size_t(streams) * n_queries);
    out.download(got.data());
    lse.download(got_lse.data());
    for (int s = 0; s < streams; ++s) {
      const AttentionState& want = paged.want[s];
      EXPECT_LT(relative_error(got.data() + size_t(s) * n_queries * head_dim, want.out.data(), want.out.size()), tolerance)
          << what << ", " << n_queries << " queries, " << n_splits << " splits, stream " << s;
      for (int q = 0; q < n_queries; ++q)
        EXPECT_NEAR(got_lse[size_t(s) * n_queries + q], want.lse[q], tolerance * (1 + std::fabs(want.lse[q])))
            << what << ", " << n_queries << " queries, " << n_splits << " splits, stream " << s;
    }
  }
}

}  // namespace ringkv::test
