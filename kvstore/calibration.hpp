#pragma once
// Learned codec tables (NUQ levels, CQ centroids, RVQ codebooks) and the calibration file that
// holds them. Tables are named "<codec spec>/L<layer>/H<head>/<K|V>/<table>", so one file can
// serve several codec specs. The file is versioned and checksummed; see calibration.cpp.
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "kvstore/codec_spec.hpp"

namespace ringkv {

struct Tensor {
  std::vector<int64_t> shape;
  std::vector<float> data;  // row-major, product(shape) elements
};

class Calibration {
 public:
  static constexpr uint32_t kFormatVersion = 1;

  void put(const std::string& name, Tensor tensor);  // checks data size against shape
  bool has(const std::string& name) const;
  // Throws, naming the table and saying to run `ringkv calibrate`, when absent or of another shape.
  const Tensor& get(const std::string& name, const std::vector<int64_t>& expected_shape) const;
  const std::map<std::string, Tensor>& tables() const { return tables_; }
  // Identity of the contents (names, shapes, data); snapshots record it to refuse foreign codebooks.
  uint64_t fingerprint() const;

  std::string description;  // what it was calibrated on, for people

  // Writes to PATH.tmp then renames; load() refuses truncated, corrupt and wrong-version files.
  void save(const std::string& path) const;
  static Calibration load(const std::string& path);

 private:
  std::map<std::string, Tensor> tables_;
};

std::string table_name(const CodecSpec& spec, int layer, int head, Role role, const std::string& table);

}  // namespace ringkv
