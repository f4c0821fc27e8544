#pragma once
// Bounds-checked little-endian reading and writing of the product's binary files (calibration,
// snapshots, KV dumps). A reader never reads past its buffer: it throws naming the file and offset.
#include <cstdint>
#include <cstring>
#include <string>
#include <type_traits>
#include <vector>

#include "kernels/error.hpp"

namespace ringkv {

class BinaryWriter {
 public:
  template <class T>
  void put(const T& value) {
    static_assert(std::is_trivially_copyable_v<T>);
    append(&value, sizeof(T));
  }
  void put_string(const std::string& s) {
    put<uint32_t>(static_cast<uint32_t>(s.size()));
    append(s.data(), s.size());
  }
  void append(const void* data, size_t bytes) {
    if (bytes == 0) return;
    const size_t at = buffer_.size();
    buffer_.resize(at + bytes);
    std::memcpy(buffer_.data() + at, data, bytes);
  }
  const std::vector<uint8_t>& bytes() const { return buffer_; }
  std::vector<uint8_t>& bytes() { return buffer_; }

 private:
  std::vector<uint8_t> buffer_;
};

class BinaryReader {
 public:
  BinaryReader(const uint8_t* data, size_t size, std::string source) : data_(data), size_(size), source_(std::move(source)) {}

  template <class T>
  T get() {
    static_assert(std::is_trivially_copyable_v<T>);
    T value;
    std::memcpy(&value, take(sizeof(T)), sizeof(T));
    return value;
  }
  std::string get_string(size_t max_length = 1 << 20) {
    const uint32_t n = get<uint32_t>();
    RINGKV_REQUIRE(n <= max_length, source_ + ": string length " + std::to_string(n) + " at offset " +
                                        std::to_string(offset_ - 4) + " is implausible (corrupt file?)");
    const uint8_t* p = take(n);
    return std::string(reinterpret_cast<const char*>(p), n);
  }
  // Returns a pointer to the next `bytes` bytes and advances past them.
  const uint8_t* take(size_t bytes) {
    RINGKV_REQUIRE(bytes <= size_ - offset_, source_ + " is truncated: needs " + std::to_string(bytes) +
                                                 " bytes at offset " + std::to_string(offset_) + " but only " +
                                                 std::to_string(size_ - offset_) + " remain");
    const uint8_t* p = data_ + offset_;
    offset_ += bytes;
    return p;
  }
  size_t offset() const { return offset_; }
  size_t remaining() const { return size_ - offset_; }
  const std::string& source() const { return source_; }

 private:
  const uint8_t* data_;
  size_t size_;
  size_t offset_ = 0;
  std::string source_;
};

// Whole-file helpers. write_file_atomically writes PATH.tmp, flushes, then renames over PATH, so a
// crash never leaves a half-written file under the real name.
std::vector<uint8_t> read_file(const std::string& path);
void write_file_atomically(const std::string& path, const std::vector<uint8_t>& bytes);

// FNV-1a 64-bit over bytes; files store it after their payload to detect corruption.
uint64_t checksum64(const void* data, size_t bytes, uint64_t seed = 0xcbf29ce484222325ull);

// The framing of the product's files: 8-byte magic, u32 format version, payload, then the u64
// checksum64 of everything before it.
void begin_file(BinaryWriter& w, const char (&magic)[8], uint32_t version);
void finish_file(BinaryWriter& w);
// Checks the framing of `file` read from `path` (a `kind`, e.g. "RingKV snapshot") and returns a
// reader over the payload: after the version, before the checksum. Wrong magic, another version,
// truncation and checksum mismatches are refused with a message naming the file.
BinaryReader open_file_payload(const std::vector<uint8_t>& file, const char (&magic)[8], uint32_t version,
                               const std::string& path, const std::string& kind);

}  // namespace ringkv
