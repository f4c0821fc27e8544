// k-means as ringkv calibrate runs it (weighted_kmeans: k-means++ seeding on the CPU, then Lloyd
// passes), with the nearest-centroid searches on the CPU and on the GPU, on millions of Gaussian
// points: seconds per run, and the GPU search kernel's TFLOP/s against the fp32 peak measured in
// the same run.
// usage: bench_kmeans [POINTS,...] (default 1048576,4194304)
#include <chrono>
#include <cstdio>
#include <functional>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "bench/fma_peak.hpp"
#include "bench/gpu_timing.hpp"
#include "kernels/nearest_centroid_gpu.hpp"
#include "kvstore/kmeans.hpp"
#include "runtime/gpu/gpu_nearest_search.hpp"

namespace ringkv {

namespace {
double seconds_of(const std::function<void()>& f) {
  const auto start = std::chrono::steady_clock::now();
  f();
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}
}  // namespace

int run(const std::vector<size_t>& sizes) {
  if (cuda_device_count() == 0) {
    std::puts("bench_kmeans: no CUDA device");
    return 0;
  }
  cudaDeviceProp prop{};
  RINGKV_CHECK_CUDA(cudaGetDeviceProperties(&prop, 0));
  const double peak = fp32_fma_peak_tflops();
  std::printf("k-means, Gaussian points, at most 25 Lloyd passes; %s, fp32 FMA peak %.1f TFLOP/s (measured)\n", prop.name, peak);
  std::printf("%9s %4s %5s | %8s %7s %12s | %8s %7s %12s | %7s | %10s %8s %8s\n", "points", "dim", "k", "CPU s", "passes",
              "inertia", "GPU s", "passes", "inertia", "speedup", "search ms", "TFLOP/s", "of peak");
  const GpuNearestSearch gpu;
  for (size_t n : sizes)
    for (const auto& [dim, k] : {std::pair{8, 256}, std::pair{16, 256}, std::pair{2, 64}}) {
      std::mt19937 rng(1);
      std::normal_distribution<float> normal;
      std::vector<float> points(n * dim);
      for (float& x : points) x = normal(rng);
      KMeansOptions options;
      options.clusters = k;
      KMeansResult cpu, on_gpu;
      const double cpu_s = seconds_of([&] { cpu = weighted_kmeans(points.data(), n, dim, nullptr, options); });
      options.search = &gpu;
      const double gpu_s = seconds_of([&] { on_gpu = weighted_kmeans(points.data(), n, dim, nullptr, options); });
      DeviceBuffer<float> d_points(points.size()), d_centroids(on_gpu.centroids.size());
      DeviceBuffer<uint32_t> d_out(n);
      d_points.upload(points.data());
      d_centroids.upload(on_gpu.centroids.data());
      const double ms = median_ms([&] { nearest_centroid_gpu(d_points.data(), n, dim, d_centroids.data(), k, d_out.data(), nullptr); }, 10);
      const double tflops = 2.0 * n * k * dim / (ms * 1e-3) / 1e12;
      std::printf("%9zu %4d %5d | %8.2f %7d %12.6g | %8.2f %7d %12.6g | %6.1fx | %10.3f %8.1f %7.1f%%\n", n, dim, k, cpu_s,
                  cpu.iterations_run, cpu.inertia, gpu_s, on_gpu.iterations_run, on_gpu.inertia, cpu_s / gpu_s, ms, tflops,
                  100.0 * tflops / peak);
    }
  return 0;
}

}  // namespace ringkv

int main(int argc, char** argv) {
  std::vector<size_t> sizes{size_t{1} << 20, size_t{1} << 22};
  if (argc > 1) {
    sizes.clear();
    std::stringstream list(argv[1]);
    for (std::string item; std::getline(list, item, ',');) sizes.push_back(std::stoull(item));
  }
  try {
    return ringkv::run(sizes);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_kmeans: %s\n", e.what());
    return 1;
  }
}
