#include "runtime/gpu/gpu_nearest_search.hpp"

#include <optional>

#include "kernels/cuda_check.hpp"
#include "kernels/nearest_centroid_gpu.hpp"
#include "runtime/gpu/gpu_backend.hpp"
#include "runtime/gpu/gpu_weights.hpp"

namespace ringkv {

namespace {
class GpuLoadedPoints final : public LoadedPoints {
 public:
  GpuLoadedPoints(const float* data, size_t n, int dim, double min_work) : data_(data), n_(n), dim_(dim), min_work_(min_work) {}

  void assign(const float* centroids, int clusters, uint32_t* out) override {
    if (!nearest_centroid_gpu_supports(dim_) || static_cast<double>(n_) * clusters * dim_ < min_work_) {
      assign_nearest(data_, n_, dim_, centroids, clusters, out);
      return;
    }
    if (!loaded_) {  // first search on the GPU: the points go up once
      require_gpu_memory((n_ * dim_ + n_ + static_cast<size_t>(clusters) * dim_) * sizeof(float),
                         "k-means on " + std::to_string(n_) + " points");
      if (!stream_) stream_.emplace();
      points_ = DeviceBuffer<float>(n_ * dim_);
      nearest_ = DeviceBuffer<uint32_t>(n_);
      RINGKV_CHECK_CUDA(cudaMemcpyAsync(points_.data(), data_, n_ * dim_ * sizeof(float), cudaMemcpyHostToDevice, stream_->get()));
      loaded_ = true;
    }
    if (centroids_.size() < static_cast<size_t>(clusters) * dim_) centroids_ = DeviceBuffer<float>(static_cast<size_t>(clusters) * dim_);
    RINGKV_CHECK_CUDA(cudaMemcpyAsync(centroids_.data(), centroids, static_cast<size_t>(clusters) * dim_ * sizeof(float),
                                      cudaMemcpyHostToDevice, stream_->get()));
    nearest_centroid_gpu(points_.data(), n_, dim_, centroids_.data(), clusters, nearest_.data(), stream_->get());
    RINGKV_CHECK_CUDA(cudaMemcpyAsync(out, nearest_.data(), n_ * sizeof(uint32_t), cudaMemcpyDeviceToHost, stream_->get()));
    stream_->synchronize();
  }

 private:
  const float* data_;
  size_t n_;
  int dim_;
  double min_work_;
  bool loaded_ = false;               // the points are on the device
  std::optional<CudaStream> stream_;  // made with the first GPU search
  DeviceBuffer<float> points_, centroids_;
  DeviceBuffer<uint32_t> nearest_;
};
}  // namespace

std::unique_ptr<LoadedPoints> GpuNearestSearch::load(const float* data, size_t n, int dim) const {
  return std::make_unique<GpuLoadedPoints>(data, n, dim, min_work_);
}

std::unique_ptr<NearestSearch> make_gpu_nearest_search() {
  RINGKV_REQUIRE(cuda_device_count() > 0, "--device gpu: no CUDA device is visible");
  return std::make_unique<GpuNearestSearch>();
}

}  // namespace ringkv
