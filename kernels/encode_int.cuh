#pragma once
// Encoding of full 128-token pages with the INT codec on the GPU, byte for byte what
// kvstore/codec_int.cpp writes: fp16 (lo, step) per channel (keys) or per token (values), codes
// rounded to nearest (ties to even) and packed LSB-first, key codes row-major and value codes
// channel-major. Every float operation is the correctly rounded one the CPU performs (no fused
// multiply-adds), so the bytes agree exactly.
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstdint>

namespace ringkv::kernels {

constexpr int kEncodeTokens = 128;  // tokens per page = threads per block = head_dim

__device__ inline float fp16_round(float x) { return __half2float(__float2half_rn(fminf(fmaxf(x, -65504.f), 65504.f))); }

// One block per page; thread i is channel i for per-channel work and token i for per-token work.
// rows: [pages][128][128] fp32; out: device pointers to each page's bytes.
template <int BITS, bool KEYS>
__global__ void __launch_bounds__(kEncodeTokens) encode_int_kernel(const float* __restrict__ rows, uint8_t* const* out) {
  constexpr int kDim = kEncodeTokens, kLevels = 1 << BITS, kRunBytes = kDim * BITS / 8, kChunk = 32;
  __shared__ float lo_s[kDim], step_s[kDim];
  __shared__ float tile[kDim][kChunk + 1];  // 32 columns of the page, +1: no bank conflicts down a column
  const int page = blockIdx.x, i = threadIdx.x;
  const float* x = rows + static_cast<size_t>(page) * kDim * kDim;
  uint8_t* bytes = out[page];
  // Calls f(j, x[i][j]) for j = 0..127 in order, reading the page through shared memory 32 columns
  // at a time so that global reads stay coalesced (every thread of the block must call it).
  auto for_row = [&](auto&& f) {
    for (int c0 = 0; c0 < kDim; c0 += kChunk) {
      __syncthreads();
      for (int k = i; k < kDim * kChunk; k += kDim) tile[k / kChunk][k % kChunk] = x[(k / kChunk) * kDim + c0 + k % kChunk];
      __syncthreads();
      for (int j = 0; j < kChunk; ++j) f(c0 + j, tile[i][j]);
    }
  };
  // The grid of vector i: channel i over the page's tokens (keys) or token i over its channels (values).
  float lo = INFINITY, hi = -INFINITY;
  auto extend = [&](int, float v) { lo = fminf(lo, v), hi = fmaxf(hi, v); };
  if constexpr (KEYS) {
    for (int j = 0; j < kDim; ++j) extend(j, x[j * kDim + i]);  // column i: coalesced across threads
  } else {
    for_row(extend);
  }
  const float glo = fp16_round(lo);
  const float gstep = fp16_round(fmaxf(__fdiv_rn(__fsub_rn(hi, glo), static_cast<float>(kLevels - 1)), 0.f));
  const __half2 param = __halves2half2(__float2half_rn(glo), __float2half_rn(gstep));
  reinterpret_cast<__half2*>(bytes)[i] = param;
  lo_s[i] = glo, step_s[i] = gstep;
  __syncthreads();
  // Thread i packs run i: token i's row of channel codes (keys) or channel i's run of token codes
  // (values); element j of the run is x[i][j] (keys) or x[j][i] (values), with the grid of channel j
  // (keys) or token j (values).
  uint32_t* run = reinterpret_cast<uint32_t*>(bytes + 4 * kDim + i * kRunBytes);
  uint64_t acc = 0;
  int filled = 0, word = 0;
  auto pack = [&](int j, float v) {
    uint32_t code = 0;
    if (step_s[j] > 0.f) {
      const float q = rintf(__fdiv_rn(__fsub_rn(v, lo_s[j]), step_s[j]));
      code = static_cast<uint32_t>(fminf(fmaxf(q, 0.f), static_cast<float>(kLevels - 1)));
    }
    acc |= static_cast<uint64_t>(code) << filled;
    filled += BITS;
    if (filled >= 32) {
      run[word++] = static_cast<uint32_t>(acc);
      acc >>= 32;
      filled -= 32;
    }
  };
  if constexpr (KEYS) {
    for_row(pack);
  } else {
    for (int j = 0; j < kDim; ++j) pack(j, x[j * kDim + i]);  // column i: coalesced across threads
  }
}

}  // namespace ringkv::kernels
