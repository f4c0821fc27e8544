#pragma once
// Hugging Face safetensors weights, memory-mapped rather than copied: one file, or the shards of a
// model folder listed in model.safetensors.index.json. Tensors are read as views; conversion to
// fp32 happens where a tensor is used.
#include <cstdint>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <vector>

namespace ringkv {

enum class DType { F32, F16, BF16 };
size_t dtype_size(DType dtype);
// count values of `dtype` at src (any alignment) to fp32.
void convert_to_float(DType dtype, const uint8_t* src, size_t count, float* out);
std::string shape_text(const std::vector<int64_t>& shape);  // "[a, b]"

struct TensorView {
  std::string name;
  DType dtype = DType::F32;
  std::vector<int64_t> shape;
  const uint8_t* data = nullptr;  // inside the mapping, valid while its file is open
  size_t elements() const;
  // The values as fp32 (a copy), checking the shape first.
  std::vector<float> to_float(const std::vector<int64_t>& expected_shape) const;
};

// A read-only mapping of a file; unmapped when destroyed.
class MappedFile {
 public:
  explicit MappedFile(const std::string& path);
  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;
  const uint8_t* data() const { return data_; }
  size_t size() const { return size_; }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  const uint8_t* data_ = nullptr;
  size_t size_ = 0;
};

class SafetensorsFile {
 public:
  // Maps the file and checks its header: JSON length, dtypes, shapes against byte ranges, and
  // that every range lies inside the file. Truncated or corrupt files are refused by name.
  explicit SafetensorsFile(const std::string& path);
  const std::map<std::string, TensorView>& tensors() const { return tensors_; }

 private:
  std::unique_ptr<MappedFile> file_;
  std::map<std::string, TensorView> tensors_;
};

// All tensors of a model folder: model.safetensors, or the shards its index names.
class WeightStore {
 public:
  explicit WeightStore(const std::string& model_dir);
  bool has(const std::string& name) const { return tensors_.count(name) > 0; }
  // Throws naming the tensor and the folder when absent.
  const TensorView& get(const std::string& name) const;
  size_t tensor_count() const { return tensors_.size(); }

 private:
  std::string dir_;
  std::vector<std::unique_ptr<SafetensorsFile>> files_;
  std::map<std::string, const TensorView*> tensors_;
};

}  // namespace ringkv
