#pragma once
// A lane's share of a run of INT codes for the tensor cores: its packed words, and the fp16 pairs
// (code + bias) that make the A fragments of mma.sync m16n8k16 (kernels/decode_attention_int.cuh).
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstdint>

namespace ringkv::kernels {

// An fp16 pair as the 32-bit register the tensor cores and logic instructions take, and back.
__device__ inline uint32_t as_u32(__half2 x) { return *reinterpret_cast<const uint32_t*>(&x); }
__device__ inline __half2 as_half2(uint32_t x) { return *reinterpret_cast<const __half2*>(&x); }

// A lane's 32 codes of a run (codes 32i to 32i + 31, packed LSB-first as kernels/bit_packing.hpp
// writes them: BITS 32-bit words) and their order along the mma's reduction dimension: k-tile kt
// (16 slots, of which the lane holds 2i, 2i + 1 as half h = 0 and 2i + 8, 2i + 9 as h = 1) takes 4
// of them. Where codes tile a word (1, 2, 4 bits) the two of a half sit 16 bits apart, at the same
// bit in each 16-bit half; at 3 bits they are neighbours.
//
// A pair becomes fp16 in one LOP3 (mask, then OR an exponent held in a register: with both as
// immediates the compiler splits it in two): a code at bit e of a half's 10 mantissa bits, under
// exponent 25 - e, is the fp16 value 2^(10 - e) + code, exactly. The mma thus sums
// (code + bias) * b, and the kernel takes sum(bias * b) off with one more mma per k-tile
// (negative_biases): the bias depends on the slot only, so no pair needs a subtraction. Codes above
// bit 10 - BITS are first moved down (a word shifted by 6, once per word) and codes low in the half
// up by 4, which keeps the biases, and so the error of cancelling them, small (at most 64, or 256
// at 4 bits). At 3 bits the two codes of a pair are neighbours, copied into place by one multiply,
// and the bias is 8.
template <int BITS>
struct LaneCodes {
  static constexpr bool kWordPairs = 32 % BITS == 0;
  static constexpr int kPerWord = 32 / BITS, kHalf = kPerWord / 2, kTilesPerWord = kPerWord / 4;
  static constexpr uint32_t kMask = (1u << BITS) - 1u;
  uint32_t w[BITS];

  __device__ void load(const uint8_t* run, int i) {
    const uint32_t* words = reinterpret_cast<const uint32_t*>(run) + BITS * i;
    if constexpr (BITS == 2) {
      const uint2 v = *reinterpret_cast<const uint2*>(words);
      w[0] = v.x, w[1] = v.y;
    } else if constexpr (BITS == 4) {
      const uint4 v = *reinterpret_cast<const uint4*>(words);
      w[0] = v.x, w[1] = v.y, w[2] = v.z, w[3] = v.w;
    } else {
#pragma unroll
      for (int k = 0; k < BITS; ++k) w[k] = words[k];
    }
  }
  // KVQuant keys, turned by RoPE in registers (kernels/decode_attention_kvquant.cuh): the lane's 32 codes
  // of a row are channels 16i to 16i + 15 (elements 0 to 15) and their RoPE partners, 64 + 16i on (16
  // to 31), so that half h of k-tiles kt and kt + 4 (kt < 4) hold a channel pair and its partners.
  // At 1 bit the word holds bytes (channels 16i to 16i + 7, their partners, channels 16i + 8 to
  // 16i + 15, their partners): bit p is element partnered_element(p).
  __device__ void load_with_partners(const uint8_t* row, int i) {
    static_assert(BITS == 1 || BITS == 2 || BITS == 4, "16 codes in whole bytes");
    const uint32_t* words = reinterpret_cast<const uint32_t*>(row);
    if constexpr (BITS == 1) {
      const uint32_t at = 2 * (i % 2);  // the 16 codes' first byte in words i / 2 and 2 + i / 2
      w[0] = __byte_perm(words[i / 2], words[2 + i / 2], at | (4 + at) << 4 | (at + 1) << 8 | (5 + at) << 12);
    } else {
      constexpr int kChunk = BITS / 2;  // words of 16 codes
#pragma unroll
      for (int k = 0; k < kChunk; ++k) w[k] = words[kChunk * i + k], w[kChunk + k] = words[2 * BITS + kChunk * i + k];
    }
  }
  // The element (0 to 15: channels 16i on, 16 to 31: their partners) of bit p of a 1-bit row loaded
  // with partners: its second and third bytes swap places.
  __device__ static constexpr int partnered_element(int p) { return p / 8 == 1 ? p + 8 : p / 8 == 2 ? p - 8 : p; }
  // KVQuant values, whose codes are a token's channels: the lane's 16 channels 16g on of two token rows
  // a and b, interleaved so that each pair holds one channel of both tokens (a low, b high): the two
  // tokens are adjacent along the value product's reduction dimension.
  __device__ void load_token_pair(const uint8_t* row_a, const uint8_t* row_b, int g) {
    static_assert(BITS == 1 || BITS == 2 || BITS == 4, "16 codes in whole bytes");
    if constexpr (BITS == 1) {  // token a's 16 codes in the low half, b's in the high
      const uint32_t a = reinterpret_cast<const uint32_t*>(row_a)[g / 2], b = reinterpret_cast<const uint32_t*>(row_b)[g / 2];
      w[0] = __byte_perm(a, b, g % 2 ? 0x7632 : 0x5410);
    } else {
      constexpr int kChunk = BITS / 2;
      const uint32_t* a = reinterpret_cast<const uint32_t*>(row_a) + kChunk * g;
      const uint32_t* b = reinterpret_cast<const uint32_t*>(row_b) + kChunk * g;
#pragma unroll
      for (int k = 0; k < kChunk; ++k) w[2 * k] = __byte_perm(a[k], b[k], 0x5410), w[2 * k + 1] = __byte_perm(a[k], b[k], 0x7632);
    }
  }
  // The channel (from 16g) whose two tokens half h of k-tile kt holds, after load_token_pair.
  __device__ static constexpr int paired_channel(int kt, int h) {
    return kt / kTilesPerWord * kHalf + 2 * (kt % kTilesPerWord) + h;
  }
  // Positions (within the lane's 32) of the codes in half h of k-tile kt: low, high.
  __device__ static constexpr int2 elements(int kt, int h) {
    if constexpr (kWordPairs) {
      const int word = kt / kTilesPerWord, r = 2 * (kt % kTilesPerWord) + h;
      return {word * kPerWord + r, word * kPerWord + r + kHalf};
    } else {
      return {4 * kt + 2 * h, 4 * kt + 2 * h + 1};
    }
  }
  // The code (position in the run, 0 to 127) at slot 16 kt + 2 lane + 8 h + high of the reduction
  // dimension, as `row` = 8 h + 2 lane + high of a score tile names it: a score tile whose row r
  // is token code_of_row(kt, r) becomes k-tile kt's B fragment by transpose_8x8 (kernels/mma.cuh).
  // The two codes of a half are a constant apart, so code_of_row(kt, r) = code_of_row(0, r % 8) +
  // elements(kt, r / 8).x: a lane's rows differ by constants.
  __device__ static constexpr int code_of_row(int kt, int row) {
    return 32 * (row % 8 / 2) + (row % 2 ? elements(0, 0).y : 0) + elements(kt, row / 8).x;
  }
  // The left shift (negative: right) that brings half h of k-tile kt to its mantissa bit.
  __device__ static constexpr int shift(int kt, int h) {
    if constexpr (kWordPairs) {
      const int bit = (2 * (kt % kTilesPerWord) + h) * BITS;
      return bit > 10 - BITS ? -6 : bit + 4 <= 10 - BITS ? 4 : 0;
    } else {
      return 0;
    }
  }
  // The mantissa bit of half h of k-tile kt's codes: the value of the pair is 2^(10 - bit) + code.
  __device__ static constexpr int mantissa_bit(int kt, int h) {
    return kWordPairs ? (2 * (kt % kTilesPerWord) + h) * BITS + shift(kt, h) : 10 - BITS;
  }
  __device__ static constexpr float bias(int kt, int h) { return static_cast<float>(1 << (10 - mantissa_bit(kt, h))); }
  // The A fragment of k-tile kt with -bias in every slot (its rows alike): its product with a B
  // is -sum(bias * B) in every row, the term that takes the biases off.
  __device__ static void negative_biases(int kt, uint32_t (&a)[4]) {
    const __half2 low = __float2half2_rn(-bias(kt, 0)), high = __float2half2_rn(-bias(kt, 1));
    a[0] = a[1] = as_u32(low);
    a[2] = a[3] = as_u32(high);
  }
  __device__ static constexpr bool uses_bit(int bit) {
    for (int kt = 0; kt < 8; ++kt)
      for (int h = 0; h < 2; ++h)
        if (mantissa_bit(kt, h) == bit) return true;
    return false;
  }
  // The exponents of the pairs (exponent 25 - bit in both halves) in registers, by mantissa bit;
  // a shuffle hides their values from the compiler, which would otherwise fold them back in.
  struct Exponents {
    uint32_t of_bit[11];
    __device__ Exponents() {
#pragma unroll
      for (int bit = 0; bit <= 10; ++bit)
        if (uses_bit(bit)) of_bit[bit] = __shfl_sync(0xffffffffu, static_cast<uint32_t>(25 - bit) * 0x04000400u, 0);
    }
  };
  // Half h of k-tile kt as an fp16 pair of (code + bias(kt, h)).
  __device__ uint32_t pair(int kt, int h, const Exponents& exponents) const {
    const int bit = mantissa_bit(kt, h);
    uint32_t codes, mask;
    if constexpr (kWordPairs) {
      const uint32_t word = w[kt / kTilesPerWord];
      const int s = shift(kt, h);
      codes = s > 0 ? word << s : s < 0 ? word >> -s : word;
      mask = (kMask << bit) * 0x10001u;
    } else {  // neighbours: their 2 * BITS bits, copied to `bit` and (the high code) bit + 16 by a multiply
      const int at = elements(kt, h).x * BITS, word = at / 32, s = at % 32;
      const uint32_t field = s + 2 * BITS <= 32 ? w[word] >> s : __funnelshift_r(w[word], w[word + 1], s);
      codes = (field & ((1u << 2 * BITS) - 1u)) * ((1u << bit) | (1u << (bit + 16 - BITS)));
      mask = (kMask << bit) * 0x10001u;
    }
    uint32_t u;  // (codes & mask) | exponent
    asm("lop3.b32 %0, %1, %2, %3, 0xEA;" : "=r"(u) : "r"(codes), "r"(mask), "r"(exponents.of_bit[bit]));
    return u;
  }
};

}  // namespace ringkv::kernels
