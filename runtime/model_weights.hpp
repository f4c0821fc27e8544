#pragma once
// The weights of a LLaMA-family decoder as the forward pass uses them: views into memory-mapped
// safetensors shards or a llama2.c checkpoint, norms and biases converted to fp32.
#include <memory>
#include <string>
#include <vector>

#include "runtime/linear.hpp"
#include "runtime/model_config.hpp"

namespace ringkv {

struct LayerWeights {
  std::vector<float> attention_norm, mlp_norm;  // [hidden]
  WeightMatrix q, k, v, o, gate, up, down;
  std::vector<float> q_bias, k_bias, v_bias;    // empty unless the config has attention biases
};

class Llama2cCheckpoint;
class WeightStore;

class ModelWeights {
 public:
  // A Hugging Face model folder (config.json and safetensors) or a llama2.c .bin checkpoint.
  // Every tensor's presence and shape is checked against the config, naming what is wrong.
  static std::unique_ptr<ModelWeights> load(const std::string& path);
  ~ModelWeights();

  const ModelConfig& config() const { return config_; }
  const std::string& source() const { return source_; }
  const std::vector<LayerWeights>& layers() const { return layers_; }
  const WeightMatrix& embedding() const { return embedding_; }
  const WeightMatrix& lm_head() const { return lm_head_; }  // the embedding when tied
  const std::vector<float>& final_norm() const { return final_norm_; }

 private:
  ModelWeights() = default;
  ModelConfig config_;
  std::string source_;
  std::unique_ptr<WeightStore> store_;
  std::unique_ptr<Llama2cCheckpoint> checkpoint_;
  std::vector<std::vector<float>> owned_;  // llama2.c q and k, reordered to the rotate-half layout
  std::vector<LayerWeights> layers_;
  WeightMatrix embedding_, lm_head_;
  std::vector<float> final_norm_;
};

}  // namespace ringkv
