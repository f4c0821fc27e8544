#pragma once
// A model's weights copied to the GPU: matrices in bf16 (converted from their stored dtype), norms
// in fp32. Refused before any copy when they do not fit in the device's free memory.
#include <vector>

#include "runtime/gpu/cublas_linear.hpp"
#include "runtime/model_weights.hpp"

namespace ringkv {

struct GpuLayerWeights {
  DeviceBuffer<float> attention_norm, mlp_norm;
  DeviceMatrix qkv;  // the q, k and v projections stacked by rows: one GEMM, one weight read
  DeviceMatrix o, gate, up, down;
};

class GpuModelWeights {
 public:
  explicit GpuModelWeights(const ModelWeights& weights);

  // Device bytes the weights of this model take.
  static size_t bytes_needed(const ModelWeights& weights);

  const std::vector<GpuLayerWeights>& layers() const { return layers_; }
  const DeviceMatrix& embedding() const { return embedding_; }
  const DeviceMatrix& lm_head() const { return tied_ ? embedding_ : lm_head_; }
  const DeviceBuffer<float>& final_norm() const { return final_norm_; }

 private:
  std::vector<GpuLayerWeights> layers_;
  DeviceMatrix embedding_, lm_head_;
  bool tied_ = false;
  DeviceBuffer<float> final_norm_;
};

// The device's free memory in bytes, and a message for what does not fit in it.
size_t gpu_free_bytes();
void require_gpu_memory(size_t bytes, const std::string& what);

}  // namespace ringkv
