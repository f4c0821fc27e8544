#pragma once
// The shape of a LLaMA-family decoder, read from a Hugging Face config.json (transformers 4 and 5
// layouts: rope settings under `rope_scaling`/`rope_theta` or `rope_parameters`) or a llama2.c header.
#include <string>

namespace ringkv {

struct RopeScaling {
  std::string type = "default";  // default, linear, dynamic, llama3, yarn
  double factor = 1.0;
  double low_freq_factor = 1.0, high_freq_factor = 4.0;   // llama3
  double original_max_position = 0;                        // llama3, yarn, dynamic
  double beta_fast = 32.0, beta_slow = 1.0;                // yarn
  double attention_factor = 0;                             // yarn; 0: derived from factor
};

struct ModelConfig {
  std::string model_type = "llama";
  int hidden_size = 0;
  int intermediate_size = 0;
  int layers = 0;
  int heads = 0;
  int kv_heads = 0;
  int head_dim = 0;
  int vocab_size = 0;
  int max_position_embeddings = 0;
  double rms_norm_eps = 1e-5;
  double rope_theta = 10000.0;
  RopeScaling rope_scaling;
  bool tie_word_embeddings = false;
  bool attention_bias = false;
  int bos_token_id = 1;
  int eos_token_id = 2;

  // Throws, naming the field, when the shape is inconsistent (heads not dividing, zero sizes).
  void validate(const std::string& source) const;
};

// Reads DIR/config.json; refuses missing or malformed fields with the file and field named.
ModelConfig read_hf_config(const std::string& model_dir);

}  // namespace ringkv
