#include "kvstore/binary_io.hpp"

#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

namespace ringkv {

std::vector<uint8_t> read_file(const std::string& path) {
  std::FILE* f = std::fopen(path.c_str(), "rb");
  RINGKV_REQUIRE(f, "cannot open " + path + ": " + std::strerror(errno));
  std::vector<uint8_t> bytes;
  uint8_t buf[1 << 16];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) bytes.insert(bytes.end(), buf, buf + n);
  const bool failed = std::ferror(f);
  std::fclose(f);
  RINGKV_REQUIRE(!failed, "cannot read " + path + ": " + std::strerror(errno));
  return bytes;
}

void write_file_atomically(const std::string& path, const std::vector<uint8_t>& bytes) {
  const std::string tmp = path + ".tmp";
  std::FILE* f = std::fopen(tmp.c_str(), "wb");
  RINGKV_REQUIRE(f, "cannot create " + tmp + ": " + std::strerror(errno));
  // fsync before the rename: otherwise a crash can leave the new name pointing at unwritten data.
  bool ok = (bytes.empty() || std::fwrite(bytes.data(), 1, bytes.size(), f) == bytes.size()) && std::fflush(f) == 0 &&
            ::fsync(fileno(f)) == 0;
  int err = errno;
  if (std::fclose(f) != 0 && ok) ok = false, err = errno;
  if (ok && std::rename(tmp.c_str(), path.c_str()) != 0) ok = false, err = errno;
  if (!ok) {
    std::remove(tmp.c_str());
    fail("cannot write " + path + ": " + std::strerror(err), __FILE__, __LINE__);
  }
}

uint64_t checksum64(const void* data, size_t bytes, uint64_t seed) {
  const auto* p = static_cast<const uint8_t*>(data);
  uint64_t h = seed;
  for (size_t i = 0; i < bytes; ++i) {
    h ^= p[i];
    h *= 0x100000001b3ull;
  }
  return h;
}

void begin_file(BinaryWriter& w, const char (&magic)[8], uint32_t version) {
  w.append(magic, sizeof magic);
  w.put<uint32_t>(version);
}

void finish_file(BinaryWriter& w) {
  const uint64_t sum = checksum64(w.bytes().data(), w.bytes().size());
  w.put(sum);
}

BinaryReader open_file_payload(const std::vector<uint8_t>& file, const char (&magic)[8], uint32_t version,
                               const std::string& path, const std::string& kind) {
  RINGKV_REQUIRE(file.size() >= sizeof magic && std::memcmp(file.data(), magic, sizeof magic) == 0,
                 path + " is not a " + kind);
  const std::string what = kind + " " + path;
  RINGKV_REQUIRE(file.size() >= sizeof magic + 4 + 8, what + " is truncated");
  uint32_t found;
  std::memcpy(&found, file.data() + sizeof magic, 4);
  RINGKV_REQUIRE(found == version, what + " has format version " + std::to_string(found) + "; this build reads version " +
                                       std::to_string(version));
  uint64_t stored;
  std::memcpy(&stored, file.data() + file.size() - 8, 8);
  RINGKV_REQUIRE(checksum64(file.data(), file.size() - 8) == stored, what + " is corrupt or truncated: checksum mismatch");
  BinaryReader r(file.data(), file.size() - 8, what);
  r.take(sizeof magic + 4);
  return r;
}

}  // namespace ringkv
