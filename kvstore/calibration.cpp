// Calibration file format (little-endian):
//   "RKVCALIB" | u32 version | string description | u32 table count |
//   per table: string name, u32 rank, rank x i64 dims, product(dims) x f32 |
//   u64 checksum64 of everything before it.
// Strings are a u32 length followed by the bytes. The framing (magic, version, checksum) is shared with
// the other product files (binary_io.hpp); load() then refuses implausible ranks and dimensions,
// duplicate names and trailing bytes, so a damaged file never becomes a wrong codebook.
#include "kvstore/calibration.hpp"

#include <cstring>

#include "kernels/error.hpp"
#include "kvstore/binary_io.hpp"

namespace ringkv {

namespace {
constexpr char kMagic[8] = {'R', 'K', 'V', 'C', 'A', 'L', 'I', 'B'};

std::string shape_text(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

size_t element_count(const std::vector<int64_t>& shape) {
  size_t n = 1;
  for (int64_t d : shape) n *= static_cast<size_t>(d);
  return n;
}
}  // namespace

std::string table_name(const CodecSpec& spec, int layer, int head, Role role, const std::string& table) {
  return spec.text() + "/L" + std::to_string(layer) + "/H" + std::to_string(head) + "/" + role_name(role) + "/" + table;
}

void Calibration::put(const std::string& name, Tensor tensor) {
  for (int64_t d : tensor.shape) RINGKV_REQUIRE(d >= 0, "calibration table " + name + " has a negative dimension");
  RINGKV_REQUIRE(tensor.data.size() == element_count(tensor.shape),
                 "calibration table " + name + " of shape " + shape_text(tensor.shape) + " holds " +
                     std::to_string(tensor.data.size()) + " values");
  tables_[name] = std::move(tensor);
}

bool Calibration::has(const std::string& name) const { return tables_.count(name) > 0; }

const Tensor& Calibration::get(const std::string& name, const std::vector<int64_t>& expected_shape) const {
  const auto it = tables_.find(name);
  RINGKV_REQUIRE(it != tables_.end(), "calibration has no table '" + name + "': run `ringkv calibrate` with this codec spec");
  RINGKV_REQUIRE(it->second.shape == expected_shape, "calibration table '" + name + "' has shape " +
                                                         shape_text(it->second.shape) + ", the codec needs " +
                                                         shape_text(expected_shape) + " (calibrated for another model?)");
  return it->second;
}

uint64_t Calibration::fingerprint() const {
  uint64_t h = checksum64(nullptr, 0);
  for (const auto& [name, t] : tables_) {
    h = checksum64(name.data(), name.size(), h);
    h = checksum64(t.shape.data(), t.shape.size() * sizeof(int64_t), h);
    h = checksum64(t.data.data(), t.data.size() * sizeof(float), h);
  }
  return h;
}

void Calibration::save(const std::string& path) const {
  BinaryWriter w;
  begin_file(w, kMagic, kFormatVersion);
  w.put_string(description);
  w.put<uint32_t>(static_cast<uint32_t>(tables_.size()));
  for (const auto& [name, t] : tables_) {
    w.put_string(name);
    w.put<uint32_t>(static_cast<uint32_t>(t.shape.size()));
    for (int64_t d : t.shape) w.put<int64_t>(d);
    w.append(t.data.data(), t.data.size() * sizeof(float));
  }
  finish_file(w);
  write_file_atomically(path, w.bytes());
}

Calibration Calibration::load(const std::string& path) {
  const std::vector<uint8_t> file = read_file(path);
  BinaryReader body = open_file_payload(file, kMagic, kFormatVersion, path, "RingKV calibration file");
  Calibration cal;
  cal.description = body.get_string();
  const uint32_t count = body.get<uint32_t>();
  for (uint32_t i = 0; i < count; ++i) {
    const std::string name = body.get_string();
    const uint32_t rank = body.get<uint32_t>();
    RINGKV_REQUIRE(rank <= 8, body.source() + ": table " + name + " has implausible rank " + std::to_string(rank));
    RINGKV_REQUIRE(!cal.has(name), body.source() + " holds table " + name + " twice");
    Tensor t;
    size_t n = 1;  // elements so far; never more than the remaining bytes hold, so it cannot overflow
    for (uint32_t k = 0; k < rank; ++k) {
      const int64_t d = body.get<int64_t>();
      const size_t room = body.remaining() / sizeof(float);
      RINGKV_REQUIRE(d >= 0 && (d == 0 || n <= room / static_cast<uint64_t>(d)),
                     body.source() + ": table " + name + " has an implausible dimension " + std::to_string(d) +
                         " (negative, or more values than the file holds)");
      t.shape.push_back(d);
      n *= static_cast<size_t>(d);
    }
    const uint8_t* values = body.take(n * sizeof(float));
    t.data.resize(n);
    if (n > 0) std::memcpy(t.data.data(), values, n * sizeof(float));  // an empty vector's data() may be null
    cal.put(name, std::move(t));
  }
  RINGKV_REQUIRE(body.remaining() == 0, body.source() + " has " + std::to_string(body.remaining()) +
                                            " unexpected trailing bytes");
  return cal;
}

}  // namespace ringkv
