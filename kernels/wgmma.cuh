#pragma once
// Hopper warpgroup tensor-core products (wgmma.mma_async, sm_90): a warpgroup of four warps computes
// a 64 x 128 fp32 tile from bf16 operands in shared memory (described by matrix descriptors) or, for
// A, in registers. The accumulator layout per thread is that of mma.sync's m16n8 C fragments
// (kernels/mma.cuh), one [4] per 8 columns: warp w of the group holds rows 16w + lane / 4 and
// + 8, columns 8j + 2 (lane % 4) and + 1. Shared-memory operands use the 128-byte swizzle: rows of
// 128 bytes, eight rows to a 1024-byte-aligned atom, 16-byte chunk c of row r stored at chunk
// c ^ (r % 8).
#include <cuda_runtime.h>

#include <cstdint>

namespace ringkv::kernels {

// Descriptor of a 128-byte-swizzled operand at shared address `address`: `leading` bytes between
// the 64-element column blocks of an MN-major operand (unused for K-major ones), `stride` bytes
// between groups of eight rows.
__device__ inline uint64_t smem_descriptor(uint32_t address, uint32_t leading, uint32_t stride) {
  return static_cast<uint64_t>((address & 0x3FFFF) >> 4) | static_cast<uint64_t>(leading >> 4) << 16 |
         static_cast<uint64_t>(stride >> 4) << 32 | uint64_t{1} << 62;
}

__device__ inline void wgmma_fence() { asm volatile("wgmma.fence.sync.aligned;\n" ::: "memory"); }
__device__ inline void wgmma_commit() { asm volatile("wgmma.commit_group.sync.aligned;\n" ::: "memory"); }
template <int PENDING>
__device__ inline void wgmma_wait() {
  asm volatile("wgmma.wait_group.sync.aligned %0;\n" ::"n"(PENDING) : "memory");
}

// Pins registers in place across an asynchronous product: the compiler must not read an accumulator
// before the wait that completes it, nor reuse an A register before the product has read it.
template <int N, int M>
__device__ inline void hold_registers(float (&r)[N][M]) {
#pragma unroll
  for (int i = 0; i < N; ++i)
#pragma unroll
    for (int j = 0; j < M; ++j) asm volatile("" : "+f"(r[i][j])::"memory");
}
template <int N, int M>
__device__ inline void hold_registers(uint32_t (&r)[N][M]) {
#pragma unroll
  for (int i = 0; i < N; ++i)
#pragma unroll
    for (int j = 0; j < M; ++j) asm volatile("" : "+r"(r[i][j])::"memory");
}

// The 64 accumulators of an m64n128 product, as asm operands %0 to %63 of d[16][4] (one macro for
// both forms of the product, which differ only in their A and B operands).
#define RINGKV_WGMMA_N128_ACCUMULATORS \
  "{%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, " \
  "%16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31, " \
  "%32, %33, %34, %35, %36, %37, %38, %39, %40, %41, %42, %43, %44, %45, %46, %47, " \
  "%48, %49, %50, %51, %52, %53, %54, %55, %56, %57, %58, %59, %60, %61, %62, %63}"
#define RINGKV_WGMMA_N128_OUTPUTS(d) \
  "+f"(d[0][0]), "+f"(d[0][1]), "+f"(d[0][2]), "+f"(d[0][3]), \
  "+f"(d[1][0]), "+f"(d[1][1]), "+f"(d[1][2]), "+f"(d[1][3]), \
  "+f"(d[2][0]), "+f"(d[2][1]), "+f"(d[2][2]), "+f"(d[2][3]), \
  "+f"(d[3][0]), "+f"(d[3][1]), "+f"(d[3][2]), "+f"(d[3][3]), \
  "+f"(d[4][0]), "+f"(d[4][1]), "+f"(d[4][2]), "+f"(d[4][3]), \
  "+f"(d[5][0]), "+f"(d[5][1]), "+f"(d[5][2]), "+f"(d[5][3]), \
  "+f"(d[6][0]), "+f"(d[6][1]), "+f"(d[6][2]), "+f"(d[6][3]), \
  "+f"(d[7][0]), "+f"(d[7][1]), "+f"(d[7][2]), "+f"(d[7][3]), \
  "+f"(d[8][0]), "+f"(d[8][1]), "+f"(d[8][2]), "+f"(d[8][3]), \
  "+f"(d[9][0]), "+f"(d[9][1]), "+f"(d[9][2]), "+f"(d[9][3]), \
  "+f"(d[10][0]), "+f"(d[10][1]), "+f"(d[10][2]), "+f"(d[10][3]), \
  "+f"(d[11][0]), "+f"(d[11][1]), "+f"(d[11][2]), "+f"(d[11][3]), \
  "+f"(d[12][0]), "+f"(d[12][1]), "+f"(d[12][2]), "+f"(d[12][3]), \
  "+f"(d[13][0]), "+f"(d[13][1]), "+f"(d[13][2]), "+f"(d[13][3]), \
  "+f"(d[14][0]), "+f"(d[14][1]), "+f"(d[14][2]), "+f"(d[14][3]), \
  "+f"(d[15][0]), "+f"(d[15][1]), "+f"(d[15][2]), "+f"(d[15][3])

// d (+)= A . B, m64n128k16: A 64 x 16 K-major and B 16 x 128 K-major (its 128 rows of 16), both in
// shared memory; d is overwritten where !accumulate.
__device__ inline void wgmma_m64n128k16_ss(float (&d)[16][4], uint64_t a, uint64_t b, bool accumulate) {
  asm volatile(
      "{\n.reg .pred p;\nsetp.ne.b32 p, %66, 0;\n"
      "wgmma.mma_async.sync.aligned.m64n128k16.f32.bf16.bf16 " RINGKV_WGMMA_N128_ACCUMULATORS ", %64, %65, p, 1, 1, 0, 0;\n}\n"
      : RINGKV_WGMMA_N128_OUTPUTS(d)
      : "l"(a), "l"(b), "r"(static_cast<int>(accumulate)));
}

// d += A . B, m64n128k16: A 64 x 16 from registers (mma.sync's A fragment layout per warp: rows
// 16w + lane / 4 and + 8), B 16 x 128 MN-major in shared memory (16 rows of 128 contiguous elements).
__device__ inline void wgmma_m64n128k16_rs_mn(float (&d)[16][4], const uint32_t (&a)[4], uint64_t b) {
  asm volatile(
      "{\n.reg .pred p;\nsetp.ne.b32 p, %69, 0;\n"
      "wgmma.mma_async.sync.aligned.m64n128k16.f32.bf16.bf16 " RINGKV_WGMMA_N128_ACCUMULATORS
      ", {%64, %65, %66, %67}, %68, p, 1, 1, 1;\n}\n"
      : RINGKV_WGMMA_N128_OUTPUTS(d)
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(b), "r"(1));
}

}  // namespace ringkv::kernels
