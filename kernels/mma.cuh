#pragma once
// Warp-level tensor-core products (mma.sync m16n8k16 of fp16 or bf16, m16n8k8 of tf32; fp32
// accumulate) and the shared-memory loads that feed them (ldmatrix).
#include <cuda_runtime.h>

#include <cstdint>

#include "kernels/shared_address.cuh"

namespace ringkv::kernels {

// An 8 x 8 matrix of 16-bit elements transposed across the warp: lane t holds row t / 4, columns
// 2 (t % 4) and + 1 (low, high) before, and the same of the transpose after (movmatrix). It turns a
// C fragment's rows of 8 into a B fragment's columns.
__device__ inline uint32_t transpose_8x8(uint32_t x) {
  uint32_t y;
  asm("movmatrix.sync.aligned.m8n8.trans.b16 %0, %1;" : "=r"(y) : "r"(x));
  return y;
}

// c += a . b: A 16 x 16 (row-major fragments), B 16 x 8 (column-major), of fp16, or of bf16 when
// BF16; C fp32. Lane (g, i) (g = lane / 4, i = lane % 4) holds a: rows g and g + 8, columns 2i,
// 2i + 1 and 2i + 8, 2i + 9; b: rows 2i, 2i + 1 and 2i + 8, 2i + 9 of column g; c: rows g, g + 8,
// columns 2i, 2i + 1.
template <bool BF16 = false>
__device__ inline void mma_16816(float (&c)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
  if constexpr (BF16)
    asm volatile(
        "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
        : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
  else
    asm volatile(
        "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
        : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

// c += a . b: A 16 x 8, B 8 x 8 of tf32 (fp32 registers whose low 13 mantissa bits the tensor cores
// ignore), C fp32. Lane (g, i) holds a: rows g, g + 8 of column i, then of column i + 4; b: rows i
// and i + 4 of column g; c: rows g, g + 8, columns 2i, 2i + 1.
__device__ inline void mma_1688_tf32(float (&c)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
  asm volatile(
      "mma.sync.aligned.m16n8k8.row.col.f32.tf32.tf32.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
      : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

// Four 8 x 8 tiles of 16-bit elements from shared memory: lanes 8j to 8j + 7 give the addresses of
// tile j's rows (16 bytes each), and lane t receives in r[j] row t / 4, columns 2 (t % 4) and
// 2 (t % 4) + 1 of tile j; TRANSPOSED: rows 2 (t % 4) and 2 (t % 4) + 1 of column t / 4.
template <bool TRANSPOSED>
__device__ inline void load_tiles_x4(uint32_t (&r)[4], const void* row) {
  const uint32_t address = shared_address(row);
  if constexpr (TRANSPOSED)
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(address));
  else
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(address));
}

}  // namespace ringkv::kernels
