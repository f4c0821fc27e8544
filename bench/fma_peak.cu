// The fp32 multiply-add peak of the device, measured: independent chains of fmaf in every thread
// of enough blocks to fill the device.
#include "bench/fma_peak.hpp"
#include "bench/gpu_timing.hpp"

namespace ringkv {

namespace {
constexpr int kChains = 8, kSteps = 4096;

__global__ void fma_chains_kernel(float seed, float* sink) {
  float x[kChains];
#pragma unroll
  for (int c = 0; c < kChains; ++c) x[c] = seed + threadIdx.x + c;
  for (int s = 0; s < kSteps; ++s)
#pragma unroll
    for (int c = 0; c < kChains; ++c) x[c] = fmaf(x[c], 0.999999f, 1e-7f);
  float sum = 0.f;
#pragma unroll
  for (int c = 0; c < kChains; ++c) sum += x[c];
  if (sum == 12345.f) *sink = sum;  // keeps the chains from being optimized away
}
}  // namespace

double fp32_fma_peak_tflops() {
  const int blocks = multiprocessor_count() * 8, threads = 256;
  DeviceBuffer<float> sink(1);
  const double ms = median_ms([&] { fma_chains_kernel<<<blocks, threads>>>(1.0f, sink.data()); }, 10);
  RINGKV_CHECK_CUDA(cudaGetLastError());
  return 2.0 * blocks * threads * kChains * kSteps / (ms * 1e-3) / 1e12;
}

}  // namespace ringkv
