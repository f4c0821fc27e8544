#pragma once
// Hopper's tensor memory accelerator (TMA, sm_90) and the shared-memory barriers its copies complete
// on: a tile of a tensor in global memory (described on the host by a CUtensorMap, see
// kernels/tensor_map.hpp) lands in shared memory in the layout the tensor cores read, with no
// address arithmetic in the threads; a barrier counts the bytes in and the threads that arrive.
#include <cuda.h>
#include <cuda_runtime.h>

#include <cstdint>

#include "kernels/shared_address.cuh"

namespace ringkv::kernels {

// A barrier in shared memory that `arrivals` threads (and the bytes announced to it) complete.
__device__ inline void barrier_init(uint64_t* barrier, int arrivals) {
  asm volatile("mbarrier.init.shared::cta.b64 [%0], %1;\n" ::"r"(shared_address(barrier)), "r"(arrivals));
}
// Makes initialized barriers visible to the asynchronous proxy (TMA) before any copy uses them.
__device__ inline void barrier_init_fence() { asm volatile("fence.mbarrier_init.release.cluster;\n" ::: "memory"); }

// Arrives, announcing `bytes` that TMA copies will bring before the barrier completes.
__device__ inline void barrier_expect_bytes(uint64_t* barrier, uint32_t bytes) {
  asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;\n" ::"r"(shared_address(barrier)), "r"(bytes)
               : "memory");
}
__device__ inline void barrier_arrive(uint64_t* barrier) {
  asm volatile("mbarrier.arrive.shared::cta.b64 _, [%0];\n" ::"r"(shared_address(barrier)) : "memory");
}
// Waits until the barrier has completed the phase of parity `phase` (0 for its first completion,
// then alternating).
__device__ inline void barrier_wait(uint64_t* barrier, uint32_t phase) {
  asm volatile(
      "{\n.reg .pred done;\n"
      "wait:\n"
      "mbarrier.try_wait.parity.shared::cta.b64 done, [%0], %1;\n"
      "@!done bra wait;\n}\n" ::"r"(shared_address(barrier)),
      "r"(phase)
      : "memory");
}

// The box of a rank-3 tensor map at coordinates (x innermost, y, z) into shared memory at `tile`,
// completing on `barrier`; out-of-range elements land as zeros.
__device__ inline void tma_load_3d(void* tile, const CUtensorMap* map, int x, int y, int z, uint64_t* barrier) {
  asm volatile(
      "cp.async.bulk.tensor.3d.shared::cluster.global.tile.mbarrier::complete_tx::bytes [%0], [%1, {%2, %3, %4}], [%5];\n" ::"r"(
          shared_address(tile)),
      "l"(reinterpret_cast<uint64_t>(map)), "r"(x), "r"(y), "r"(z), "r"(shared_address(barrier))
      : "memory");
}

// Named barriers (ids 1 to 15; 0 is __syncthreads'): `threads` arrivals complete one, of which the
// syncing threads wait and the arriving ones go on.
__device__ inline void named_barrier_sync(int id, int threads) {
  asm volatile("bar.sync %0, %1;\n" ::"r"(id), "r"(threads) : "memory");
}
__device__ inline void named_barrier_arrive(int id, int threads) {
  asm volatile("bar.arrive %0, %1;\n" ::"r"(id), "r"(threads) : "memory");
}

// Hands registers between the warpgroups of a block (setmaxnreg): a warpgroup that only issues
// copies gives most of its registers to those that compute. Every thread of the warpgroup calls it.
template <int REGISTERS>
__device__ inline void registers_decrease_to() {
  asm volatile("setmaxnreg.dec.sync.aligned.u32 %0;\n" ::"n"(REGISTERS));
}
template <int REGISTERS>
__device__ inline void registers_increase_to() {
  asm volatile("setmaxnreg.inc.sync.aligned.u32 %0;\n" ::"n"(REGISTERS));
}

}  // namespace ringkv::kernels
