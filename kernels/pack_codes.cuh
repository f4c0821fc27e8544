#pragma once
// Packing of a page's codes, block-wide: word w holds bits [32w, 32w + 32) of the codes in order,
// LSB-first (the layout of kernels/bit_packing.hpp); the last word is padded with zeros.
#include <cuda_runtime.h>

#include <cstdint>

namespace ringkv::kernels {

template <typename Code>
__device__ void pack_codes(const Code* codes, int n_codes, int bits, uint32_t* __restrict__ words) {
  const int n_words = (n_codes * bits + 31) / 32;
  for (int w = threadIdx.x; w < n_words; w += blockDim.x) {
    uint32_t word = 0;
    for (int i = w * 32 / bits; i < n_codes && i * bits < (w + 1) * 32; ++i) {
      const int shift = i * bits - w * 32;  // negative: the code began in the word before
      word |= shift >= 0 ? static_cast<uint32_t>(codes[i]) << shift : static_cast<uint32_t>(codes[i]) >> -shift;
    }
    words[w] = word;
  }
}

}  // namespace ringkv::kernels
