#include "runtime/safetensors.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "kernels/error.hpp"
#include "kernels/half.hpp"

namespace ringkv {

size_t dtype_size(DType dtype) { return dtype == DType::F32 ? 4 : 2; }

size_t TensorView::elements() const {
  size_t n = 1;
  for (int64_t d : shape) n *= static_cast<size_t>(d);
  return n;
}

void convert_to_float(DType dtype, const uint8_t* src, size_t count, float* out) {
  if (dtype == DType::F32) {
    std::memcpy(out, src, count * sizeof(float));
    return;
  }
  for (size_t i = 0; i < count; ++i) {
    uint16_t h;
    std::memcpy(&h, src + 2 * i, 2);
    out[i] = dtype == DType::BF16 ? bf16_to_float(h) : fp16_to_float(h);
  }
}

std::string shape_text(const std::vector<int64_t>& shape) {
  std::string t = "[";
  for (size_t i = 0; i < shape.size(); ++i) t += (i ? ", " : "") + std::to_string(shape[i]);
  return t + "]";
}

std::vector<float> TensorView::to_float(const std::vector<int64_t>& expected_shape) const {
  RINGKV_REQUIRE(shape == expected_shape, "tensor " + name + " has shape " + shape_text(shape) +
                                              ", the model config implies " + shape_text(expected_shape));
  std::vector<float> out(elements());
  convert_to_float(dtype, data, out.size(), out.data());
  return out;
}

MappedFile::MappedFile(const std::string& path) : path_(path) {
  const int fd = ::open(path.c_str(), O_RDONLY);
  RINGKV_REQUIRE(fd >= 0, "cannot open " + path + ": " + std::strerror(errno));
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    ::close(fd);
    fail("cannot stat " + path + ": " + std::strerror(errno), __FILE__, __LINE__);
  }
  size_ = static_cast<size_t>(st.st_size);
  if (size_ > 0) {
    void* p = ::mmap(nullptr, size_, PROT_READ, MAP_PRIVATE, fd, 0);
    ::close(fd);
    RINGKV_REQUIRE(p != MAP_FAILED, "cannot map " + path + ": " + std::strerror(errno));
    data_ = static_cast<const uint8_t*>(p);
  } else {
    ::close(fd);
  }
}

MappedFile::~MappedFile() {
  if (data_) ::munmap(const_cast<uint8_t*>(data_), size_);
}

namespace {
DType parse_dtype(const std::string& s, const std::string& where) {
  if (s == "F32") return DType::F32;
  if (s == "F16") return DType::F16;
  if (s == "BF16") return DType::BF16;
  fail(where + " has dtype " + s + "; RingKV reads F32, F16 and BF16", __FILE__, __LINE__);
}
}  // namespace

SafetensorsFile::SafetensorsFile(const std::string& path) : file_(std::make_unique<MappedFile>(path)) {
  const size_t size = file_->size();
  RINGKV_REQUIRE(size >= 8, path + " is truncated: no safetensors header");
  uint64_t header_len;
  std::memcpy(&header_len, file_->data(), 8);
  RINGKV_REQUIRE(header_len <= size - 8, path + " is truncated or not a safetensors file: header of " +
                                             std::to_string(header_len) + " bytes in a file of " + std::to_string(size));
  nlohmann::json header;
  try {
    header = nlohmann::json::parse(file_->data() + 8, file_->data() + 8 + header_len);
  } catch (const nlohmann::json::exception& e) {
    fail(path + " has a corrupt safetensors header: " + e.what(), __FILE__, __LINE__);
  }
  RINGKV_REQUIRE(header.is_object(), path + " has a corrupt safetensors header");
  const size_t data_start = 8 + header_len, data_size = size - data_start;
  for (const auto& [name, entry] : header.items()) {
    if (name == "__metadata__") continue;
    const std::string where = path + ": tensor " + name;
    try {
      TensorView v;
      v.name = name;
      v.dtype = parse_dtype(entry.at("dtype").get<std::string>(), where);
      v.shape = entry.at("shape").get<std::vector<int64_t>>();
      const auto offsets = entry.at("data_offsets").get<std::vector<uint64_t>>();
      RINGKV_REQUIRE(offsets.size() == 2 && offsets[0] <= offsets[1] && offsets[1] <= data_size,
                     where + " lies outside the file (truncated?)");
      for (int64_t d : v.shape) RINGKV_REQUIRE(d >= 0, where + " has a negative dimension");
      RINGKV_REQUIRE(v.elements() * dtype_size(v.dtype) == offsets[1] - offsets[0],
                     where + ": its shape and dtype do not match its byte range");
      v.data = file_->data() + data_start + offsets[0];
      tensors_[name] = std::move(v);
    } catch (const nlohmann::json::exception& e) {
      fail(where + " has a malformed entry: " + e.what(), __FILE__, __LINE__);
    }
  }
}

WeightStore::WeightStore(const std::string& model_dir) : dir_(model_dir) {
  namespace fs = std::filesystem;
  std::vector<std::string> shards;
  const fs::path index = fs::path(model_dir) / "model.safetensors.index.json";
  if (fs::exists(index)) {
    std::ifstream in(index);
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(in);
      for (const auto& [tensor, file] : j.at("weight_map").items()) {
        const std::string f = file.get<std::string>();
        if (std::find(shards.begin(), shards.end(), f) == shards.end()) shards.push_back(f);
      }
    } catch (const nlohmann::json::exception& e) {
      fail(index.string() + " is malformed: " + e.what(), __FILE__, __LINE__);
    }
  } else {
    RINGKV_REQUIRE(fs::exists(fs::path(model_dir) / "model.safetensors"),
                   model_dir + " has neither model.safetensors nor model.safetensors.index.json");
    shards.push_back("model.safetensors");
  }
  for (const std::string& shard : shards) {
    files_.push_back(std::make_unique<SafetensorsFile>((fs::path(model_dir) / shard).string()));
    for (const auto& [name, view] : files_.back()->tensors()) {
      RINGKV_REQUIRE(!tensors_.count(name), model_dir + ": tensor " + name + " appears in two shards");
      tensors_[name] = &view;
    }
  }
}

const TensorView& WeightStore::get(const std::string& name) const {
  const auto it = tensors_.find(name);
  RINGKV_REQUIRE(it != tensors_.end(), "model " + dir_ + " has no tensor " + name);
  return *it->second;
}

}  // namespace ringkv
