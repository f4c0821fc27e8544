#pragma once
// llama2.c checkpoints (.bin): a header of 7 int32 (dim, hidden_dim, n_layers, n_heads,
// n_kv_heads, vocab_size, seq_len; a negative vocab_size means an untied classifier) followed by
// fp32 weights in a fixed order. The file is memory-mapped; tensors are views into it.
#include <map>
#include <memory>
#include <string>

#include "runtime/model_config.hpp"
#include "runtime/safetensors.hpp"

namespace ringkv {

class Llama2cCheckpoint {
 public:
  // Refuses files whose size does not match the header exactly, naming both sizes.
  explicit Llama2cCheckpoint(const std::string& path);
  const ModelConfig& config() const { return config_; }
  // Tensors under the Hugging Face names (model.layers.N.self_attn.q_proj.weight, ...), each
  // layer's slice of the stacked llama2.c arrays.
  const std::map<std::string, TensorView>& tensors() const { return tensors_; }

 private:
  std::unique_ptr<MappedFile> file_;
  ModelConfig config_;
  std::map<std::string, TensorView> tensors_;
};

}  // namespace ringkv
