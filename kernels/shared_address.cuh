#pragma once
// The 32-bit shared-memory address of a generic pointer into shared memory, as the PTX instructions
// that read or write shared memory (cp.async, ldmatrix, mbarrier, TMA, wgmma descriptors) take it.
#include <cuda_runtime.h>

#include <cstdint>

namespace ringkv::kernels {

__device__ inline uint32_t shared_address(const void* p) { return static_cast<uint32_t>(__cvta_generic_to_shared(p)); }

}  // namespace ringkv::kernels
