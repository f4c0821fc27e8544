// CUDA twins of the transformer's row-wise steps (RMSNorm, RoPE, SwiGLU) against the CPU ones, on
// awkward sizes with outputs poisoned first; skipped where no CUDA device is present.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>

#include "kernels/cuda_check.hpp"
#include "kernels/half.hpp"
#include "kernels/transformer_ops.hpp"
#include "kernels/transformer_ops_gpu.hpp"
#include "../test_util.hpp"

namespace ringkv {
namespace {

// The norm comes out in bf16: each value the CPU twin's rounded, or (where the two fp32 results
// straddle a rounding boundary) one bf16 step from it.
TEST(GpuTransformerOps, RmsNormMatchesCpuTwin) {
  if (cuda_device_count() == 0) GTEST_SKIP() << "no CUDA device: GPU kernel test skipped";
  for (int dim : {200, 256, 4096}) {
    const int n = 37;
    const std::vector<float> x = test::gaussian(size_t(n) * dim, dim, 2.0f), w = test::gaussian(dim, dim + 1);
    std::vector<float> want(x.size());
    rms_norm_cpu(x.data(), n, dim, w.data(), 1e-5f, want.data());
    DeviceBuffer<float> dx(x.size()), dw(w.size());
    DeviceBuffer<uint16_t> dout(x.size());
    dx.upload(x.data()), dw.upload(w.data()), dout.poison();
    rms_norm_gpu(dx.data(), n, dim, dw.data(), 1e-5f, dout.data(), nullptr);
    std::vector<uint16_t> got(x.size());
    dout.download(got.data());
    size_t same = 0;
    for (size_t i = 0; i < got.size(); ++i) {
      const int step = std::abs(int(got[i]) - int(float_to_bf16(want[i])));
      ASSERT_LE(step, 1) << "dim " << dim << " element " << i;
      same += step == 0;
    }
    EXPECT_GE(same, got.size() * 99 / 100) << "dim " << dim;
  }
}

// Rows wider than their heads (one more head, as the stacked q, k, v projections are): the heads
// turned as on the CPU, the rest of each row untouched.
TEST(GpuTransformerOps, RopeMatchesCpuTwinAtLongPositions) {
  if (cuda_device_count() == 0) GTEST_SKIP() << "no CUDA device: GPU kernel test skipped";
  for (int head_dim : {64, 96, 128})
    for (int first_position : {0, 1000003, 9999000}) {
      const int n = 29, heads = 3;
      const size_t width = size_t(heads + 1) * head_dim, turned = size_t(heads) * head_dim;
      const RopeTable rope = RopeTable::plain(head_dim, 500000.0);
      const std::vector<float> rows = test::gaussian(n * width, head_dim);
      std::vector<float> want(rows), narrow(n * turned), got(rows.size());
      for (int i = 0; i < n; ++i) std::copy_n(rows.begin() + i * width, turned, narrow.begin() + i * turned);
      rope_heads_cpu(narrow.data(), n, heads, head_dim, first_position, rope);
      for (int i = 0; i < n; ++i) std::copy_n(narrow.begin() + i * turned, turned, want.begin() + i * width);
      std::vector<int> positions(n);
      for (int i = 0; i < n; ++i) positions[i] = first_position + i;
      DeviceBuffer<float> dx(rows.size()), dfreq(rope.inv_freq.size());
      DeviceBuffer<int> dpositions(n);
      dx.upload(rows.data()), dfreq.upload(rope.inv_freq.data()), dpositions.upload(positions.data());
      rope_heads_gpu(dx.data(), n, width, heads, head_dim, dpositions.data(), dfreq.data(), nullptr);
      dx.download(got.data());
      EXPECT_LT(test::relative_error(got.data(), want.data(), want.size()), 1e-6) << head_dim << " at " << first_position;
      for (int i = 0; i < n; ++i)
        ASSERT_TRUE(std::equal(got.begin() + i * width + turned, got.begin() + (i + 1) * width, rows.begin() + i * width + turned))
            << "row " << i << ": the head past the turned ones changed";
    }
}

// A decode step's row into a page tail (wrap 128, heads 128 rows apart) and into a whole-sequence
// cache (rows kv_heads apart): the row at the device-held position rounded to bf16, nothing else
// touched, the lengths the row + 1.
TEST(GpuTransformerOps, StoreRowsBf16WritesTheRowOfTheDevicePosition) {
  if (cuda_device_count() == 0) GTEST_SKIP() << "no CUDA device: GPU kernel test skipped";
  const int heads = 3, dim = 96, rows = 128;
  struct Layout {
    int wrap;
    size_t head_stride, row_stride;
  };
  for (const Layout& layout : {Layout{rows, size_t(rows) * dim, dim}, Layout{1 << 30, dim, size_t(heads) * dim}})
    for (int position : {0, 5, 127, 128 + 77, 1000}) {
      const int row = position % layout.wrap;
      if (row >= rows) continue;
      const std::vector<float> x = test::gaussian(size_t(heads) * dim, position + 1, 3.0f);
      std::vector<uint16_t> want(size_t(heads) * rows * dim, 0xFFFF), got(want.size());
      for (int h = 0; h < heads; ++h)
        for (int c = 0; c < dim; ++c) want[h * layout.head_stride + row * layout.row_stride + c] = float_to_bf16(x[h * dim + c]);
      DeviceBuffer<float> dx(x.size());
      DeviceBuffer<uint16_t> dst(want.size());
      DeviceBuffer<int> dposition(1), lengths(heads);
      dx.upload(x.data()), dposition.upload(&position), dst.poison(), lengths.poison();
      store_rows_bf16_gpu(dx.data(), heads, dim, dposition.data(), layout.wrap, dst.data(), layout.head_stride, layout.row_stride,
                          lengths.data(), nullptr);
      dst.download(got.data());
      EXPECT_EQ(got, want) << "position " << position << ", wrap " << layout.wrap;
      std::vector<int> got_lengths(heads);
      lengths.download(got_lengths.data());
      EXPECT_EQ(got_lengths, std::vector<int>(heads, row + 1)) << "position " << position;
    }
}

TEST(GpuTransformerOps, SiluMulMatchesCpuTwin) {
  if (cuda_device_count() == 0) GTEST_SKIP() << "no CUDA device: GPU kernel test skipped";
  const size_t n = 100003;
  std::vector<float> want = test::gaussian(n, 5, 3.0f), up = test::gaussian(n, 6), got(n);
  DeviceBuffer<float> dg(n), du(n);
  dg.upload(want.data()), du.upload(up.data());
  silu_mul_cpu(want.data(), up.data(), n);
  silu_mul_gpu(dg.data(), du.data(), n, nullptr);
  dg.download(got.data());
  EXPECT_LT(test::relative_error(got.data(), want.data(), n), 1e-6);
}

TEST(GpuTransformerOps, EmbeddingAndBf16ConversionsMatchCpuTwins) {
  if (cuda_device_count() == 0) GTEST_SKIP() << "no CUDA device: GPU kernel test skipped";
  const int vocab = 1009, dim = 300, n = 41;
  std::vector<uint16_t> table(size_t(vocab) * dim);
  const std::vector<float> values = test::gaussian(table.size(), 7, 2.0f);
  for (size_t i = 0; i < table.size(); ++i) table[i] = float_to_bf16(values[i]);
  std::vector<int32_t> ids(n);
  for (int i = 0; i < n; ++i) ids[i] = (i * 389 + 17) % vocab;
  std::vector<float> want(size_t(n) * dim), got(want.size());
  embed_rows_cpu(table.data(), ids.data(), n, dim, want.data());
  DeviceBuffer<uint16_t> dtable(table.size()), dbf(want.size());
  DeviceBuffer<int32_t> dids(n);
  DeviceBuffer<float> drows(want.size());
  dtable.upload(table.data()), dids.upload(ids.data()), drows.poison();
  embed_rows_gpu(dtable.data(), dids.data(), n, dim, drows.data(), nullptr);
  drows.download(got.data());
  EXPECT_EQ(got, want) << "embedding rows";

  // Values across bf16's rounding boundaries: ties, denormals, large magnitudes.
  std::vector<float> x = test::gaussian(want.size(), 8, 1e3f);
  x[0] = 1.00390625f, x[1] = 1e-40f, x[2] = -3.0e38f;
  std::vector<uint16_t> want_bf(x.size()), got_bf(x.size());
  to_bf16_cpu(x.data(), x.size(), want_bf.data());
  drows.upload(x.data()), dbf.poison();
  to_bf16_gpu(drows.data(), x.size(), dbf.data(), nullptr);
  dbf.download(got_bf.data());
  EXPECT_EQ(got_bf, want_bf) << "bf16 rounding";
  std::vector<float> want_back(x.size()), got_back(x.size());
  from_bf16_cpu(want_bf.data(), x.size(), want_back.data());
  drows.poison();
  from_bf16_gpu(dbf.data(), x.size(), drows.data(), nullptr);
  drows.download(got_back.data());
  EXPECT_EQ(got_back, want_back) << "bf16 to fp32";

}

}  // namespace
}  // namespace ringkv
