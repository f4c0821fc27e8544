#pragma once
// k-means' nearest-centroid searches on this process's GPU: the points are uploaded once, and each
// Lloyd pass sends the centroids and reads back one index per point.
#include "kvstore/kmeans.hpp"

namespace ringkv {

class GpuNearestSearch final : public NearestSearch {
 public:
  // Searches of fewer than min_work multiply-adds (points x centroids x dim), and points of a
  // dimension the GPU search is not compiled for, run on the CPU, where they cost less than a
  // round trip to the GPU.
  explicit GpuNearestSearch(double min_work = 1 << 22) : min_work_(min_work) {}
  std::unique_ptr<LoadedPoints> load(const float* data, size_t n, int dim) const override;

 private:
  double min_work_;
};

}  // namespace ringkv
