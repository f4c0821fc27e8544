#include "kernels/compiled_variants.hpp"
#include "kernels/cuda_check.hpp"
#include "kernels/nearest_centroid.cuh"
#include "kernels/nearest_centroid_gpu.hpp"

namespace ringkv {

namespace {
template <typename F>
void with_point_dim(int dim, F&& f) {
  with_compiled<1, 2, 4, 8, 16, 32>(dim, "nearest_centroid_gpu", "-float points", "1, 2, 4, 8, 16 or 32", f);
}
}  // namespace

bool nearest_centroid_gpu_supports(int dim) {
  return dim == 1 || dim == 2 || dim == 4 || dim == 8 || dim == 16 || dim == 32;
}

void nearest_centroid_gpu(const float* points, size_t n, int dim, const float* centroids, int clusters, uint32_t* out,
                          cudaStream_t stream) {
  RINGKV_REQUIRE(clusters > 0, "nearest_centroid_gpu needs centroids");
  if (n == 0) return;
  const size_t blocks = (n + kernels::kNearestThreads - 1) / kernels::kNearestThreads;
  with_point_dim(dim, [&](auto d) {
    kernels::nearest_centroid_kernel<decltype(d)::value>
        <<<static_cast<unsigned>(blocks), kernels::kNearestThreads, 0, stream>>>(points, n, centroids, clusters, out);
  });
  RINGKV_CHECK_CUDA(cudaGetLastError());
}

}  // namespace ringkv
