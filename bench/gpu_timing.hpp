#pragma once
// Timing helpers of the GPU benchmarks: CUDA events, the median of repeated runs after a warm-up,
// the device copy bandwidth the results are compared with, and their reproducible input numbers.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "kernels/cuda_check.hpp"

namespace ringkv {

// The next number in [0, 1) of a 64-bit linear congruential sequence (the same inputs every run).
inline float next_uniform(uint64_t& state) {
  state = state * 6364136223846793005ull + 1442695040888963407ull;
  return static_cast<float>(state >> 40) / 16777216.0f;
}

class Event {
 public:
  Event() { RINGKV_CHECK_CUDA(cudaEventCreate(&e_)); }
  ~Event() { cudaEventDestroy(e_); }
  Event(const Event&) = delete;
  Event& operator=(const Event&) = delete;
  cudaEvent_t get() const { return e_; }

 private:
  cudaEvent_t e_;
};

template <class F>
inline double median_ms(F&& f, int repeats) {
  f();
  RINGKV_CHECK_CUDA(cudaDeviceSynchronize());
  std::vector<float> t;
  Event a, b;
  for (int i = 0; i < repeats; ++i) {
    RINGKV_CHECK_CUDA(cudaEventRecord(a.get()));
    f();
    RINGKV_CHECK_CUDA(cudaEventRecord(b.get()));
    RINGKV_CHECK_CUDA(cudaEventSynchronize(b.get()));
    float ms = 0;
    RINGKV_CHECK_CUDA(cudaEventElapsedTime(&ms, a.get(), b.get()));
    t.push_back(ms);
  }
  std::sort(t.begin(), t.end());
  return t[t.size() / 2];
}

// Device copy bandwidth, bytes read plus written per second.
inline double copy_peak_gbs() {
  const size_t n = size_t{2} << 30;
  DeviceBuffer<uint8_t> a(n), b(n);
  RINGKV_CHECK_CUDA(cudaMemset(a.data(), 1, n));
  const double ms = median_ms([&] { RINGKV_CHECK_CUDA(cudaMemcpyAsync(b.data(), a.data(), n, cudaMemcpyDeviceToDevice)); }, 10);
  return 2.0 * n / (ms * 1e-3) / 1e9;
}

}  // namespace ringkv
