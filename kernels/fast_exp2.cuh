#pragma once
// 2^x for the softmax of the attention kernels.
#include <cuda_runtime.h>

namespace ringkv::kernels {

// 2^x in one instruction on the special-function unit (relative error about 2^-22; flushes
// subnormal results to 0; -inf gives 0). exp2f adds a range check and two multiplies around it.
__device__ inline float fast_exp2(float x) {
  float y;
  asm("ex2.approx.ftz.f32 %0, %1;\n" : "=f"(y) : "f"(x));
  return y;
}

}  // namespace ringkv::kernels
