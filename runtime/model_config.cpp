#include "runtime/model_config.hpp"

#include <fstream>
#include <nlohmann/json.hpp>

#include "kernels/error.hpp"

namespace ringkv {

namespace {
using json = nlohmann::json;

template <class T>
T field(const json& j, const char* name, const std::string& source, const T* fallback = nullptr) {
  const auto it = j.find(name);
  if (it == j.end() || it->is_null()) {
    RINGKV_REQUIRE(fallback, source + " has no '" + name + "'");
    return *fallback;
  }
  try {
    return it->get<T>();
  } catch (const json::exception&) {
    fail(source + ": '" + name + "' has the wrong type (" + it->dump() + ")", __FILE__, __LINE__);
  }
}

template <class T>
T optional(const json& j, const char* name, const std::string& source, T fallback) {
  return field<T>(j, name, source, &fallback);
}

RopeScaling read_rope(const json& params, const std::string& source) {
  RopeScaling r;
  const std::string type_key = params.contains("rope_type") ? "rope_type" : "type";
  r.type = optional<std::string>(params, type_key.c_str(), source, "default");
  r.factor = optional<double>(params, "factor", source, 1.0);
  r.low_freq_factor = optional<double>(params, "low_freq_factor", source, 1.0);
  r.high_freq_factor = optional<double>(params, "high_freq_factor", source, 4.0);
  r.original_max_position = optional<double>(params, "original_max_position_embeddings", source, 0.0);
  r.beta_fast = optional<double>(params, "beta_fast", source, 32.0);
  r.beta_slow = optional<double>(params, "beta_slow", source, 1.0);
  r.attention_factor = optional<double>(params, "attention_factor", source, 0.0);
  static const char* known[] = {"default", "linear", "dynamic", "llama3", "yarn"};
  bool ok = false;
  for (const char* k : known) ok |= r.type == k;
  RINGKV_REQUIRE(ok, source + ": rope type '" + r.type + "' is not supported (default, linear, dynamic, llama3, yarn)");
  return r;
}
}  // namespace

void ModelConfig::validate(const std::string& source) const {
  RINGKV_REQUIRE(hidden_size > 0 && intermediate_size > 0 && layers > 0 && heads > 0 && kv_heads > 0 && head_dim > 0 &&
                     vocab_size > 0,
                 source + ": sizes must be positive");
  RINGKV_REQUIRE(heads % kv_heads == 0, source + ": num_attention_heads " + std::to_string(heads) +
                                            " is not a multiple of num_key_value_heads " + std::to_string(kv_heads));
  RINGKV_REQUIRE(head_dim % 2 == 0, source + ": head_dim " + std::to_string(head_dim) + " must be even for RoPE");
  RINGKV_REQUIRE(rms_norm_eps > 0 && rope_theta > 0, source + ": rms_norm_eps and rope_theta must be positive");
}

ModelConfig read_hf_config(const std::string& model_dir) {
  const std::string path = model_dir + "/config.json";
  std::ifstream in(path);
  RINGKV_REQUIRE(in.good(), "cannot open " + path + " (is " + model_dir + " a Hugging Face model folder?)");
  json j;
  try {
    j = json::parse(in);
  } catch (const json::exception& e) {
    fail(path + " is not valid JSON: " + e.what(), __FILE__, __LINE__);
  }
  ModelConfig c;
  c.model_type = optional<std::string>(j, "model_type", path, "llama");
  RINGKV_REQUIRE(c.model_type == "llama" || c.model_type == "mistral" || c.model_type == "qwen2",
                 path + ": model_type '" + c.model_type + "' is not supported (llama, mistral, qwen2)");
  c.hidden_size = field<int>(j, "hidden_size", path);
  c.intermediate_size = field<int>(j, "intermediate_size", path);
  c.layers = field<int>(j, "num_hidden_layers", path);
  c.heads = field<int>(j, "num_attention_heads", path);
  c.kv_heads = optional<int>(j, "num_key_value_heads", path, c.heads);
  c.head_dim = optional<int>(j, "head_dim", path, c.heads > 0 ? c.hidden_size / c.heads : 0);
  c.vocab_size = field<int>(j, "vocab_size", path);
  c.max_position_embeddings = optional<int>(j, "max_position_embeddings", path, 4096);
  c.rms_norm_eps = optional<double>(j, "rms_norm_eps", path, 1e-6);
  c.tie_word_embeddings = optional<bool>(j, "tie_word_embeddings", path, false);
  // Qwen2 has biases on q, k and v without saying so in older configs.
  c.attention_bias = optional<bool>(j, "attention_bias", path, c.model_type == "qwen2");
  c.bos_token_id = optional<int>(j, "bos_token_id", path, 1);
  c.eos_token_id = j.contains("eos_token_id") && j["eos_token_id"].is_array() ? j["eos_token_id"][0].get<int>()
                                                                               : optional<int>(j, "eos_token_id", path, 2);
  if (j.contains("rope_parameters") && j["rope_parameters"].is_object()) {  // transformers 5
    c.rope_theta = optional<double>(j["rope_parameters"], "rope_theta", path, 10000.0);
    c.rope_scaling = read_rope(j["rope_parameters"], path);
  } else {
    c.rope_theta = optional<double>(j, "rope_theta", path, 10000.0);
    if (j.contains("rope_scaling") && j["rope_scaling"].is_object()) c.rope_scaling = read_rope(j["rope_scaling"], path);
  }
  c.validate(path);
  return c;
}

}  // namespace ringkv
