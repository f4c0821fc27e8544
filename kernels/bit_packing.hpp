#pragma once
// Packs codes of 1..16 bits LSB-first into a byte stream: code i occupies bits [i*b, (i+1)*b).
#include <cstddef>
#include <cstdint>

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

}  // namespace ringkv
