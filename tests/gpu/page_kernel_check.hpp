#pragma once
// A GPU page encoder and decoder against a CPU codec, on pages of several KV heads: rows encoded by
// both (keys handed to the GPU after RoPE where the codec stores them before it, as the cache hands
// them over) decode alike through the CPU codec but for a bounded share of elements (near-ties);
// the CPU's pages decoded on the GPU into bf16 rows equal the CPU's decoded rows (turned to their
// positions) within bf16 rounding.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <string>
#include <vector>

#include "kernels/cuda_check.hpp"
#include "kernels/half.hpp"
#include "kernels/rope.hpp"
#include "kvstore/codec.hpp"
#include "../test_util.hpp"

namespace ringkv::test {

struct PageKernels {
  // rows: device fp32 [n_pages][kv_heads][128][128]; pages: device array [n_pages][kv_heads] of page pointers.
  std::function<void(const float* rows, uint8_t* const* pages)> encode;
  // rows: device bf16 [n_pages * 128][kv_heads][128].
  std::function<void(const uint8_t* const* pages, uint16_t* rows)> decode;
};

struct PageKernelTolerance {
  double element = 1e-3;  // an encoded element differs where |gpu - cpu| > element * (1 + |cpu|) ...
  size_t differing = 2;   // ... and at most this many per 1000 elements may
};

inline void check_page_kernels(const PageCodec& codec, bool turned, const RopeTable& rope, int n_pages, int kv_heads,
                               int first_position, size_t slot, uint64_t seed, const PageKernels& kernels,
                               const PageKernelTolerance& tolerance, const std::string& what) {
  constexpr int kPage = 128, kDim = 128;
  const int blocks = n_pages * kv_heads;
  const std::vector<float> stored = structured_rows(size_t(blocks) * kPage, kDim, seed, true);
  std::vector<float> given = stored;
  std::vector<uint8_t> want(size_t(blocks) * slot);
  auto position_of = [&](int block) { return first_position + block / kv_heads * kPage; };
  for (int b = 0; b < blocks; ++b) {
    if (turned) apply_rope_rows(given.data() + size_t(b) * kPage * kDim, kPage, position_of(b), rope);
    codec.encode(stored.data() + size_t(b) * kPage * kDim, kPage, position_of(b), want.data() + b * slot);
  }
  DeviceBuffer<float> d_rows(given.size());
  d_rows.upload(given.data());
  DeviceBuffer<uint8_t> d_pages(want.size());
  d_pages.poison();
  std::vector<uint8_t*> page_ptrs;
  for (int b = 0; b < blocks; ++b) page_ptrs.push_back(d_pages.data() + b * slot);
  DeviceBuffer<uint8_t*> d_page_ptrs(page_ptrs.size());
  d_page_ptrs.upload(page_ptrs.data());
  kernels.encode(d_rows.data(), d_page_ptrs.data());
  RINGKV_CHECK_CUDA(cudaDeviceSynchronize());
  std::vector<uint8_t> got(want.size());
  d_pages.download(got.data());
  size_t differ = 0;
  double worst = 0;
  std::vector<float> a(size_t(kPage) * kDim), b(a.size());
  for (int p = 0; p < blocks; ++p) {
    codec.decode_rows({got.data() + p * slot, kPage, position_of(p)}, 0, kPage, a.data());
    codec.decode_rows({want.data() + p * slot, kPage, position_of(p)}, 0, kPage, b.data());
    for (size_t i = 0; i < a.size(); ++i) {
      const double d = std::fabs(a[i] - b[i]);
      worst = std::max(worst, d);
      differ += d > tolerance.element * (1 + std::fabs(b[i]));
    }
  }
  const size_t elements = size_t(blocks) * kPage * kDim;
  EXPECT_LE(differ, elements * tolerance.differing / 1000) << what << ": " << differ << " elements differ, worst by " << worst;

  d_pages.upload(want.data());
  const std::vector<const uint8_t*> const_ptrs(page_ptrs.begin(), page_ptrs.end());
  DeviceBuffer<const uint8_t*> d_const_ptrs(const_ptrs.size());
  d_const_ptrs.upload(const_ptrs.data());
  DeviceBuffer<uint16_t> d_decoded(elements);
  d_decoded.poison();
  kernels.decode(d_const_ptrs.data(), d_decoded.data());
  RINGKV_CHECK_CUDA(cudaDeviceSynchronize());
  std::vector<uint16_t> decoded(elements);
  d_decoded.download(decoded.data());
  for (int p = 0; p < blocks; ++p) {
    const int k = p / kv_heads, h = p % kv_heads;
    codec.decode_rows({want.data() + p * slot, kPage, position_of(p)}, 0, kPage, b.data());
    if (turned) apply_rope_rows(b.data(), kPage, position_of(p), rope);
    for (int t = 0; t < kPage; ++t)
      for (int c = 0; c < kDim; ++c) {
        const float x = bf16_to_float(decoded[((size_t(k) * kPage + t) * kv_heads + h) * kDim + c]), y = b[size_t(t) * kDim + c];
        ASSERT_LE(std::fabs(x - y), std::fabs(y) / 128 + 1e-5f) << what << ": page " << k << " head " << h << " token " << t
                                                                << " channel " << c;
      }
  }
}

}  // namespace ringkv::test
