#pragma once
// Packs codes of 1..16 bits LSB-first into a byte stream: code i occupies bits [i*b, (i+1)*b).
#include <cstddef>
#include <cstdint>
#include <cstring>

namespace ringkv {

inline size_t packed_bytes(size_t count, int bits) { return (count * static_cast<size_t>(bits) + 7) / 8; }

class BitWriter {
 public:
  explicit BitWriter(uint8_t* out) : out_(out) {}
  void put(uint32_t code, int bits) {
    acc_ |= static_cast<uint64_t>(code & ((1u << bits) - 1u)) << filled_;
    filled_ += bits;
    while (filled_ >= 8) {
      *out_++ = static_cast<uint8_t>(acc_);
      acc_ >>= 8;
      filled_ -= 8;
    }
  }
  // Writes the last partial byte; the writer must not be used afterwards.
  void flush() {
    if (filled_ > 0) *out_++ = static_cast<uint8_t>(acc_);
    filled_ = 0;
    acc_ = 0;
  }

 private:
  uint8_t* out_;
  uint64_t acc_ = 0;
  int filled_ = 0;
};

// Random access to the i-th b-bit code; reads at most 3 bytes, never past the packed size.
inline uint32_t read_code(const uint8_t* packed, size_t index, int bits) {
  const size_t bit = index * static_cast<size_t>(bits);
  const size_t byte = bit >> 3;
  const int shift = static_cast<int>(bit & 7);
  const int need = (shift + bits + 7) >> 3;
  uint32_t word = 0;
  for (int i = 0; i < need; ++i) word |= static_cast<uint32_t>(packed[byte + i]) << (8 * i);
  return (word >> shift) & ((1u << bits) - 1u);
}

// Eight codes of B bits fill exactly B bytes: unpack them from one little-endian word.
template <int B>
inline void unpack_octets(const uint8_t* p, int octets, uint16_t* out) {
  constexpr uint64_t mask = (uint64_t{1} << B) - 1;
  for (int o = 0; o < octets; ++o, p += B, out += 8) {
    uint64_t word = 0;
    std::memcpy(&word, p, B);
    for (int j = 0; j < 8; ++j) out[j] = static_cast<uint16_t>((word >> (j * B)) & mask);
  }
}

// Unpacks `count` consecutive codes starting at code `first`: whole octets of codes through a
// word-wide fast path where the start is byte aligned, the rest streaming. Reads no byte past the
// last code.
inline void unpack_codes(const uint8_t* packed, size_t first, int count, int bits, uint16_t* out) {
  if (count <= 0) return;
  if (first % 8 == 0 && bits <= 8 && count >= 8) {
    const uint8_t* p = packed + first / 8 * bits;
    const int octets = count / 8;
    switch (bits) {
      case 1: unpack_octets<1>(p, octets, out); break;
      case 2: unpack_octets<2>(p, octets, out); break;
      case 3: unpack_octets<3>(p, octets, out); break;
      case 4: unpack_octets<4>(p, octets, out); break;
      case 5: unpack_octets<5>(p, octets, out); break;
      case 6: unpack_octets<6>(p, octets, out); break;
      case 7: unpack_octets<7>(p, octets, out); break;
      default: unpack_octets<8>(p, octets, out); break;
    }
    first += static_cast<size_t>(octets) * 8, out += octets * 8, count -= octets * 8;
    if (count == 0) return;
  }
  const uint32_t mask = (1u << bits) - 1u;
  const size_t bit = first * static_cast<size_t>(bits);
  const uint8_t* p = packed + (bit >> 3);
  const int shift = static_cast<int>(bit & 7);
  uint64_t acc = static_cast<uint64_t>(*p++) >> shift;
  int have = 8 - shift;
  for (int i = 0; i < count; ++i) {
    while (have < bits) {
      acc |= static_cast<uint64_t>(*p++) << have;
      have += 8;
    }
    out[i] = static_cast<uint16_t>(acc & mask);
    acc >>= bits;
    have -= bits;
  }
}

}  // namespace ringkv
