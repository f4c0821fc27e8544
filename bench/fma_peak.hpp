#pragma once
namespace ringkv {
// The device's fp32 fused multiply-add rate, TFLOP/s (2 flops each), measured now.
double fp32_fma_peak_tflops();
}  // namespace ringkv
