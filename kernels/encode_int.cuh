#pragma once
// Encoding of full 128-token pages with the INT codec on the GPU, byte for byte what
// kvstore/codec_int.cpp writes: fp16 (lo, step) per channel (keys) or per token (values), codes
// rounded to nearest (ties to even) and packed LSB-first, key codes row-major and value codes
// channel-major. Every float operation is the correctly rounded one the CPU performs (no fused
// multiply-adds), so the bytes agree exactly.
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstdint>

#include "kernels/copy_async.cuh"

namespace ringkv::kernels {

constexpr int kEncodeTokens = 128;   // tokens per page = head_dim
constexpr int kEncodeThreads = 256;  // two threads per vector (for its grid) and per run (to pack it)
// Row stride of the page in shared memory, in floats: 16-byte aligned for the copies, and 4 banks
// apart, so that 8 lanes reading 16 bytes each from 8 rows, and 32 lanes reading one column, hit
// distinct banks.
constexpr int kEncodeRowFloats = kEncodeTokens + 4;

// Dynamic shared memory of encode_int_kernel: the page.
constexpr int encode_int_shared_bytes() { return kEncodeTokens * kEncodeRowFloats * 4; }

__device__ inline float fp16_round(float x) { return __half2float(__float2half_rn(fminf(fmaxf(x, -65504.f), 65504.f))); }

// rintf((v - lo) / step) clamped to [0, levels - 1], as the CPU computes it. The quotient comes
// from a product with the reciprocal (relative error below 2^-22, less than 4e-6 on a quotient
// below 16); only where that lands within 1e-4 of a half-integer, where rounding the exact quotient
// could go the other way, is the division done.
__device__ inline uint32_t int_code(float v, float lo, float step, float inv_step, int levels) {
  if (!(step > 0.f)) return 0;
  const float d = __fsub_rn(v, lo);
  float q = rintf(__fmul_rn(d, inv_step));
  if (!(fabsf(__fmul_rn(d, inv_step) - q) < 0.4999f)) q = rintf(__fdiv_rn(d, step));
  return static_cast<uint32_t>(fminf(fmaxf(q, 0.f), static_cast<float>(levels - 1)));
}

// One block per page, its 64 KiB copied into shared memory once (cp.async). Vector v (channel v
// over the tokens for keys, token v over the channels for values) gets its grid from threads v and
// v + 128, a half of its elements each; then run v (token v's channel codes for keys, channel v's
// token codes for values) is packed by the same two threads, 64 codes (2 * BITS whole words) each.
// rows: [pages][128][128] fp32, 16-byte aligned; out: device pointers to each page's bytes.
template <int BITS, bool KEYS>
__global__ void __launch_bounds__(kEncodeThreads) encode_int_kernel(const float* __restrict__ rows, uint8_t* const* out) {
  constexpr int kDim = kEncodeTokens, kStride = kEncodeRowFloats, kLevels = 1 << BITS, kHalf = kDim / 2;
  constexpr int kRunBytes = kDim * BITS / 8;
  extern __shared__ __align__(16) float tile[];  // [token][kStride]
  __shared__ float part_lo[2][kDim], part_hi[2][kDim], lo_s[kDim], step_s[kDim], inv_s[kDim];
  const int page = blockIdx.x, t = threadIdx.x, v = t % kDim, half = t / kDim;
  const float* x = rows + static_cast<size_t>(page) * kDim * kDim;
  uint8_t* bytes = out[page];
  for (int c = t; c < kDim * kDim / 4; c += kEncodeThreads) copy_async_16(tile + c / 32 * kStride + c % 32 * 4, x + 4 * c, true);
  copy_async_commit();
  copy_async_wait<0>();
  __syncthreads();
  // Element j of vector v (keys: token j of channel v) and of run v (keys: channel j of token v).
  auto column = [&](int j) { return tile[j * kStride + v]; };
  auto row4 = [&](int k) { return *reinterpret_cast<const float4*>(tile + v * kStride + 4 * k); };

  float lo = INFINITY, hi = -INFINITY;
  if constexpr (KEYS) {
    for (int j = half * kHalf; j < (half + 1) * kHalf; ++j) lo = fminf(lo, column(j)), hi = fmaxf(hi, column(j));
  } else {
    for (int k = half * kHalf / 4; k < (half + 1) * kHalf / 4; ++k) {
      const float4 e = row4(k);
      lo = fminf(fminf(lo, e.x), fminf(e.y, fminf(e.z, e.w)));
      hi = fmaxf(fmaxf(hi, e.x), fmaxf(e.y, fmaxf(e.z, e.w)));
    }
  }
  part_lo[half][v] = lo, part_hi[half][v] = hi;
  __syncthreads();
  if (half == 0) {
    const float glo = fp16_round(fminf(lo, part_lo[1][v]));
    const float span = __fsub_rn(fmaxf(hi, part_hi[1][v]), glo);
    const float gstep = fp16_round(fmaxf(__fdiv_rn(span, static_cast<float>(kLevels - 1)), 0.f));
    reinterpret_cast<__half2*>(bytes)[v] = __halves2half2(__float2half_rn(glo), __float2half_rn(gstep));
    lo_s[v] = glo, step_s[v] = gstep, inv_s[v] = gstep > 0.f ? __frcp_rn(gstep) : 0.f;
  }
  __syncthreads();

  uint32_t* words = reinterpret_cast<uint32_t*>(bytes + 4 * kDim + v * kRunBytes) + half * 2 * BITS;
  uint64_t acc = 0;
  int filled = 0, word = 0;
  auto pack = [&](int j, float value) {
    acc |= static_cast<uint64_t>(int_code(value, lo_s[j], step_s[j], inv_s[j], kLevels)) << filled;
    filled += BITS;
    if (filled >= 32) {
      words[word++] = static_cast<uint32_t>(acc);
      acc >>= 32;
      filled -= 32;
    }
  };
  if constexpr (KEYS) {
    for (int k = half * kHalf / 4; k < (half + 1) * kHalf / 4; ++k) {
      const float4 e = row4(k);
      pack(4 * k, e.x), pack(4 * k + 1, e.y), pack(4 * k + 2, e.z), pack(4 * k + 3, e.w);
    }
  } else {
    for (int j = half * kHalf; j < (half + 1) * kHalf; ++j) pack(j, column(j));
  }
}

}  // namespace ringkv::kernels
