#include "runtime/random_model.hpp"

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>

#include "kernels/error.hpp"
#include "kernels/half.hpp"
#include "kvstore/binary_io.hpp"

namespace ringkv {

namespace {
using json = nlohmann::json;

json config_json(const ModelConfig& c) {
  json j = {{"architectures", {"LlamaForCausalLM"}}, {"model_type", c.model_type}, {"hidden_size", c.hidden_size},
            {"intermediate_size", c.intermediate_size}, {"num_hidden_layers", c.layers},
            {"num_attention_heads", c.heads}, {"num_key_value_heads", c.kv_heads}, {"head_dim", c.head_dim},
            {"vocab_size", c.vocab_size}, {"max_position_embeddings", c.max_position_embeddings},
            {"rms_norm_eps", c.rms_norm_eps}, {"rope_theta", c.rope_theta},
            {"tie_word_embeddings", c.tie_word_embeddings}, {"attention_bias", c.attention_bias},
            {"bos_token_id", c.bos_token_id}, {"eos_token_id", c.eos_token_id}, {"hidden_act", "silu"}};
  const RopeScaling& r = c.rope_scaling;
  if (r.type != "default") {
    json s = {{"rope_type", r.type}, {"factor", r.factor}};
    if (r.type == "llama3") s.update({{"low_freq_factor", r.low_freq_factor}, {"high_freq_factor", r.high_freq_factor}});
    if (r.original_max_position > 0) s["original_max_position_embeddings"] = r.original_max_position;
    if (r.type == "yarn") s.update({{"beta_fast", r.beta_fast}, {"beta_slow", r.beta_slow}});
    j["rope_scaling"] = s;
  }
  return j;
}
}  // namespace

void write_random_model(const std::string& dir, const ModelConfig& c, DType dtype, uint64_t seed) {
  c.validate(dir);
  std::filesystem::create_directories(dir);
  struct Entry {
    std::string name;
    std::vector<int64_t> shape;
    bool ones;  // norms
  };
  const int64_t hidden = c.hidden_size, q_dim = int64_t(c.heads) * c.head_dim, kv_dim = int64_t(c.kv_heads) * c.head_dim;
  std::vector<Entry> entries = {{"model.embed_tokens.weight", {c.vocab_size, hidden}, false},
                                {"model.norm.weight", {hidden}, true}};
  if (!c.tie_word_embeddings) entries.push_back({"lm_head.weight", {c.vocab_size, hidden}, false});
  for (int l = 0; l < c.layers; ++l) {
    const std::string p = "model.layers." + std::to_string(l) + ".";
    entries.insert(entries.end(), {{p + "input_layernorm.weight", {hidden}, true},
                                   {p + "post_attention_layernorm.weight", {hidden}, true},
                                   {p + "self_attn.q_proj.weight", {q_dim, hidden}, false},
                                   {p + "self_attn.k_proj.weight", {kv_dim, hidden}, false},
                                   {p + "self_attn.v_proj.weight", {kv_dim, hidden}, false},
                                   {p + "self_attn.o_proj.weight", {hidden, q_dim}, false},
                                   {p + "mlp.gate_proj.weight", {c.intermediate_size, hidden}, false},
                                   {p + "mlp.up_proj.weight", {c.intermediate_size, hidden}, false},
                                   {p + "mlp.down_proj.weight", {hidden, c.intermediate_size}, false}});
    if (c.attention_bias)
      entries.insert(entries.end(), {{p + "self_attn.q_proj.bias", {q_dim}, false},
                                     {p + "self_attn.k_proj.bias", {kv_dim}, false},
                                     {p + "self_attn.v_proj.bias", {kv_dim}, false}});
  }
  const size_t element = dtype_size(dtype);
  json header = json::object();
  size_t offset = 0;
  for (const Entry& e : entries) {
    size_t n = 1;
    for (int64_t s : e.shape) n *= static_cast<size_t>(s);
    header[e.name] = {{"dtype", dtype == DType::F32 ? "F32" : dtype == DType::F16 ? "F16" : "BF16"},
                      {"shape", e.shape},
                      {"data_offsets", {offset, offset + n * element}}};
    offset += n * element;
  }
  std::string text = header.dump();
  text.append((8 - text.size() % 8) % 8, ' ');  // the data section starts 8-byte aligned
  std::vector<uint8_t> bytes(8 + text.size());
  const uint64_t header_size = text.size();
  std::memcpy(bytes.data(), &header_size, 8);
  std::memcpy(bytes.data() + 8, text.data(), text.size());
  bytes.reserve(bytes.size() + offset);
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> normal(0.f, 0.02f);
  for (const Entry& e : entries) {
    size_t n = 1;
    for (int64_t s : e.shape) n *= static_cast<size_t>(s);
    for (size_t i = 0; i < n; ++i) {
      const float value = e.ones ? 1.f : normal(rng);
      uint8_t raw[4];
      if (dtype == DType::F32) {
        std::memcpy(raw, &value, 4);
      } else {
        const uint16_t h = dtype == DType::BF16 ? float_to_bf16(value) : float_to_fp16(value);
        std::memcpy(raw, &h, 2);
      }
      bytes.insert(bytes.end(), raw, raw + element);
    }
  }
  write_file_atomically(dir + "/model.safetensors", bytes);
  const std::string config_text = config_json(c).dump(2) + "\n";
  write_file_atomically(dir + "/config.json", std::vector<uint8_t>(config_text.begin(), config_text.end()));
}

}  // namespace ringkv
