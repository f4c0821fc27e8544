#pragma once
// Asynchronous copies from global to shared memory (cp.async, sm_80 on), in groups that complete in order.
#include <cuda_runtime.h>

#include <cstdint>

#include "kernels/shared_address.cuh"

namespace ringkv::kernels {

// 16 bytes global -> shared without registers; zero-filled when `valid` is false.
__device__ inline void copy_async_16(void* shared, const void* global, bool valid) {
  const uint32_t address = shared_address(shared);
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(address), "l"(global), "r"(valid ? 16 : 0));
}
// 4 bytes global -> shared (for destinations only 4-byte aligned, such as padded tile rows).
__device__ inline void copy_async_4(void* shared, const void* global) {
  const uint32_t address = shared_address(shared);
  asm volatile("cp.async.ca.shared.global [%0], [%1], 4;\n" ::"r"(address), "l"(global));
}
__device__ inline void copy_async_commit() { asm volatile("cp.async.commit_group;\n" ::); }
template <int PENDING>
__device__ inline void copy_async_wait() { asm volatile("cp.async.wait_group %0;\n" ::"n"(PENDING)); }

}  // namespace ringkv::kernels
