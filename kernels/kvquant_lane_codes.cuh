#pragma once
// How kernels/decode_attention_kvquant.cuh's lanes turn KVQuant codes into the fp16 pairs of their
// mma fragments, by the page's levels:
// - EvenLevelCodes (evenly spaced levels, 1, 2 or 4 bits): the codes as exact fp16 integers
//   (LaneCodes, one logic instruction a pair); the levels' first value and spacing go into each
//   vector's (lo, step), and the values' pairs carry a bias the kernel takes off;
// - TableLevelCodes (any levels, 1 to 4 bits): the levels themselves, a pair at a time from a
//   table of every pair of levels in shared memory (2^(2 BITS) entries, per warp and role).
// Keys: a lane's row holds channels 16i to 16i + 15 (elements 0 to 15) and their RoPE partners,
// 64 + 16i on (16 to 31); half h of k-tiles kt and kt + 4 (kt < 4) pairs a channel pair with its
// partners. Values: a lane's 16 channels 16g on, of two token rows a and b, each pair one channel of
// both tokens (the value product reduces over tokens).
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstdint>

#include "kernels/lane_codes.cuh"

namespace ringkv::kernels {

// The channel of element e (0 to 31) of lane i's key row.
__device__ constexpr int partnered_channel(int i, int e) { return e < 16 ? 16 * i + e : 48 + 16 * i + e; }

template <int BITS>
struct EvenLevelCodes {
  using Codes = LaneCodes<BITS>;
  static constexpr bool kTable = false;
  typename Codes::Exponents exponents;

  __device__ static constexpr int2 elements(int kt, int h) {
    const int2 e = Codes::elements(kt, h);
    return BITS == 1 ? int2{Codes::partnered_element(e.x), Codes::partnered_element(e.y)} : e;
  }
  __device__ static constexpr int paired_channel(int f, int h) { return Codes::paired_channel(f, h); }
  __device__ static constexpr float value_bias(int f, int h) { return Codes::bias(f, h); }

  struct KeyRow {
    Codes codes;
  };
  __device__ static void load_key_row(KeyRow& r, const uint8_t* row, int i) { r.codes.load_with_partners(row, i); }
  // Half h of k-tile kt: the codes, exactly.
  __device__ __half2 key_pair(const KeyRow& r, int kt, int h) const {
    const uint32_t pair = r.codes.pair(kt, h, exponents);
    return __hsub2(*reinterpret_cast<const __half2*>(&pair), __float2half2_rn(Codes::bias(kt, h)));
  }
  struct ValueRows {
    Codes codes;
  };
  __device__ static void load_value_rows(ValueRows& r, const uint8_t* row_a, const uint8_t* row_b, int g) {
    r.codes.load_token_pair(row_a, row_b, g);
  }
  // Half h of fragment f: the codes plus value_bias(f, h).
  __device__ uint32_t value_pair(const ValueRows& r, int f, int h) const { return r.codes.pair(f, h, exponents); }
};

// 16 codes of a row (2 BITS bytes from byte 2 BITS idx): bits 0-31 in lo, the rest in hi.
template <int BITS>
struct SixteenCodes {
  uint32_t lo = 0, hi = 0;
  __device__ void load(const uint8_t* row, int idx) {
    if constexpr (BITS == 1) {
      lo = reinterpret_cast<const uint16_t*>(row)[idx];
    } else if constexpr (BITS == 2) {
      lo = reinterpret_cast<const uint32_t*>(row)[idx];
    } else if constexpr (BITS == 4) {
      const uint2 v = reinterpret_cast<const uint2*>(row)[idx];
      lo = v.x, hi = v.y;
    } else {  // 6 bytes, 2-byte aligned
      const uint16_t* u = reinterpret_cast<const uint16_t*>(row + 2 * BITS * idx);
      lo = u[0] | static_cast<uint32_t>(u[1]) << 16, hi = u[2];
    }
  }
  // `width` bits from bit `bit`.
  __device__ uint32_t field(int bit, int width) const {
    const uint32_t mask = (1u << width) - 1u;
    if (bit + width <= 32) return (lo >> bit) & mask;
    if (bit >= 32) return (hi >> (bit - 32)) & mask;
    return __funnelshift_r(lo, hi, bit) & mask;
  }
};

template <int BITS>
struct TableLevelCodes {
  static constexpr bool kTable = true;
  static constexpr int kPairs = 1 << (2 * BITS);  // entries of a role's table
  const uint32_t* key_table;                      // [kPairs] fp16 pairs (level[index low BITS], level[index high BITS])
  const uint32_t* value_table;

  // Neighbouring codes pair up: a pair's index is a field of the packed codes.
  __device__ static constexpr int2 elements(int kt, int h) { return {4 * kt + 2 * h, 4 * kt + 2 * h + 1}; }
  __device__ static constexpr int paired_channel(int f, int h) { return 2 * f + h; }
  __device__ static constexpr float value_bias(int, int) { return 0.f; }

  // Fills a role's table from its 2^BITS levels (the warp's lanes).
  __device__ static void fill(uint32_t* table, const float* levels, int lane) {
    for (int x = lane; x < kPairs; x += 32) {
      const __half2 pair = __floats2half2_rn(levels[x & ((1 << BITS) - 1)], levels[x >> BITS]);
      table[x] = *reinterpret_cast<const uint32_t*>(&pair);
    }
  }

  struct KeyRow {
    SixteenCodes<BITS> low, high;  // channels 16i on, and 64 + 16i on
  };
  __device__ static void load_key_row(KeyRow& r, const uint8_t* row, int i) {
    r.low.load(row, i);
    r.high.load(row, 4 + i);
  }
  __device__ __half2 key_pair(const KeyRow& r, int kt, int h) const {
    const int e = elements(kt, h).x;
    const uint32_t index = (e < 16 ? r.low : r.high).field(BITS * (e % 16), 2 * BITS);
    const uint32_t pair = key_table[index];
    return *reinterpret_cast<const __half2*>(&pair);
  }
  struct ValueRows {
    SixteenCodes<BITS> a, b;
  };
  __device__ static void load_value_rows(ValueRows& r, const uint8_t* row_a, const uint8_t* row_b, int g) {
    r.a.load(row_a, g);
    r.b.load(row_b, g);
  }
  __device__ uint32_t value_pair(const ValueRows& r, int f, int h) const {
    const int bit = BITS * paired_channel(f, h);
    return value_table[r.a.field(bit, BITS) | r.b.field(bit, BITS) << BITS];
  }
};

}  // namespace ringkv::kernels
