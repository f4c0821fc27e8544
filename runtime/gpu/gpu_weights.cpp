#include "runtime/gpu/gpu_weights.hpp"

#include <cstdio>
#include <cstring>
#include <initializer_list>

#include "kernels/half.hpp"

namespace ringkv {

namespace {
size_t matrix_bytes(const WeightMatrix& w) { return static_cast<size_t>(w.rows * w.cols) * sizeof(uint16_t); }

// Matrices with the same columns stacked by rows, in bf16 on the device.
DeviceMatrix upload(std::initializer_list<const WeightMatrix*> parts) {
  int64_t rows = 0;
  for (const WeightMatrix* w : parts) rows += w->rows;
  const int64_t cols = (*parts.begin())->cols;
  DeviceMatrix m{DeviceBuffer<uint16_t>(static_cast<size_t>(rows * cols)), rows, cols};
  uint16_t* at = m.data.data();
  for (const WeightMatrix* w : parts) {
    RINGKV_REQUIRE(w->cols == cols, "stacked weight matrices must have the same columns");
    if (w->dtype == DType::BF16) {
      RINGKV_CHECK_CUDA(cudaMemcpy(at, w->data, matrix_bytes(*w), cudaMemcpyHostToDevice));
    } else {  // other dtypes go through fp32 a block of rows at a time
      constexpr int64_t kRowsPerCopy = 256;
      std::vector<float> row(cols);
      std::vector<uint16_t> block(static_cast<size_t>(kRowsPerCopy * cols));
      for (int64_t r0 = 0; r0 < w->rows; r0 += kRowsPerCopy) {
        const int64_t n = std::min(kRowsPerCopy, w->rows - r0);
        for (int64_t r = 0; r < n; ++r) {
          w->row(r0 + r, row.data());
          for (int64_t c = 0; c < cols; ++c) block[static_cast<size_t>(r * cols + c)] = float_to_bf16(row[c]);
        }
        RINGKV_CHECK_CUDA(cudaMemcpy(at + r0 * cols, block.data(), static_cast<size_t>(n * cols) * sizeof(uint16_t),
                                     cudaMemcpyHostToDevice));
      }
    }
    at += w->rows * cols;
  }
  return m;
}

DeviceBuffer<float> upload(const std::vector<float>& v) {
  DeviceBuffer<float> d(v.size());
  d.upload(v.data());
  return d;
}

bool tied(const ModelWeights& weights) { return weights.lm_head().data == weights.embedding().data; }
}  // namespace

size_t gpu_free_bytes() {
  size_t free = 0, total = 0;
  RINGKV_CHECK_CUDA(cudaMemGetInfo(&free, &total));
  return free;
}

void require_gpu_memory(size_t bytes, const std::string& what) {
  const size_t free = gpu_free_bytes();
  if (bytes <= free) return;
  char text[160];
  std::snprintf(text, sizeof text, " needs %.2f GiB of GPU memory; the GPU has %.2f GiB free", bytes / double(1ull << 30),
                free / double(1ull << 30));
  throw Error(what + text);
}

size_t GpuModelWeights::bytes_needed(const ModelWeights& weights) {
  size_t bytes = matrix_bytes(weights.embedding()) + (tied(weights) ? 0 : matrix_bytes(weights.lm_head()));
  for (const LayerWeights& l : weights.layers())
    for (const WeightMatrix* w : {&l.q, &l.k, &l.v, &l.o, &l.gate, &l.up, &l.down}) bytes += matrix_bytes(*w);
  return bytes;
}

GpuModelWeights::GpuModelWeights(const ModelWeights& weights) : tied_(tied(weights)) {
  const ModelConfig& c = weights.config();
  RINGKV_REQUIRE(!c.attention_bias, "the GPU backend does not run attention biases yet: use --device cpu for " +
                                        weights.source());
  require_gpu_memory(bytes_needed(weights), "the weights of " + weights.source());
  embedding_ = upload({&weights.embedding()});
  if (!tied_) lm_head_ = upload({&weights.lm_head()});
  final_norm_ = upload(weights.final_norm());
  for (const LayerWeights& l : weights.layers())
    layers_.push_back({upload(l.attention_norm), upload(l.mlp_norm), upload({&l.q, &l.k, &l.v}), upload({&l.o}),
                       upload({&l.gate}), upload({&l.up}), upload({&l.down})});
}

}  // namespace ringkv
