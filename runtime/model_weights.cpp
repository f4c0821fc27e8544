#include "runtime/model_weights.hpp"

#include <filesystem>
#include <functional>

#include "kernels/error.hpp"
#include "runtime/llama2c.hpp"
#include "runtime/safetensors.hpp"

namespace ringkv {

namespace {
// llama2.c (like Meta's checkpoints) rotates interleaved channel pairs (2j, 2j+1); the runtime
// rotates halves (j, j + d/2), as Hugging Face checkpoints do. Reordering each head's rows of
// the q and k projections turns one layout into the other.
std::vector<float> interleaved_to_half_rows(const TensorView& t, int heads, int head_dim) {
  const int64_t cols = t.shape[1];
  std::vector<float> in = t.to_float(t.shape), out(in.size());
  for (int h = 0; h < heads; ++h)
    for (int j = 0; j < head_dim / 2; ++j)
      for (int p = 0; p < 2; ++p) {
        const int64_t from = static_cast<int64_t>(h) * head_dim + 2 * j + p;
        const int64_t to = static_cast<int64_t>(h) * head_dim + p * (head_dim / 2) + j;
        std::copy(in.begin() + from * cols, in.begin() + (from + 1) * cols, out.begin() + to * cols);
      }
  return out;
}
}  // namespace

ModelWeights::~ModelWeights() = default;

std::unique_ptr<ModelWeights> ModelWeights::load(const std::string& path) {
  std::unique_ptr<ModelWeights> m(new ModelWeights());
  m->source_ = path;
  std::function<const TensorView*(const std::string&)> find;
  RINGKV_REQUIRE(std::filesystem::exists(path), "model " + path + " does not exist");
  if (std::filesystem::is_directory(path)) {
    m->config_ = read_hf_config(path);
    m->store_ = std::make_unique<WeightStore>(path);
    find = [&m](const std::string& name) { return m->store_->has(name) ? &m->store_->get(name) : nullptr; };
  } else {
    RINGKV_REQUIRE(std::filesystem::is_regular_file(path),
                   "model " + path + " is neither a Hugging Face folder nor a llama2.c checkpoint file");
    m->checkpoint_ = std::make_unique<Llama2cCheckpoint>(path);
    m->config_ = m->checkpoint_->config();
    find = [&m](const std::string& name) {
      const auto it = m->checkpoint_->tensors().find(name);
      return it == m->checkpoint_->tensors().end() ? nullptr : &it->second;
    };
  }
  const ModelConfig& c = m->config_;
  c.validate(path);
  auto get = [&](const std::string& name) -> const TensorView& {
    const TensorView* t = find(name);
    RINGKV_REQUIRE(t, "model " + path + " has no tensor " + name);
    return *t;
  };
  auto matrix = [&](const std::string& name, int64_t rows, int64_t cols) { return WeightMatrix::from(get(name), rows, cols); };
  auto vec = [&](const std::string& name, int64_t n) { return get(name).to_float({n}); };
  const int64_t hidden = c.hidden_size, q_dim = int64_t(c.heads) * c.head_dim, kv_dim = int64_t(c.kv_heads) * c.head_dim;
  for (int l = 0; l < c.layers; ++l) {
    const std::string p = "model.layers." + std::to_string(l) + ".";
    LayerWeights w;
    w.attention_norm = vec(p + "input_layernorm.weight", hidden);
    w.mlp_norm = vec(p + "post_attention_layernorm.weight", hidden);
    w.q = matrix(p + "self_attn.q_proj.weight", q_dim, hidden);
    w.k = matrix(p + "self_attn.k_proj.weight", kv_dim, hidden);
    w.v = matrix(p + "self_attn.v_proj.weight", kv_dim, hidden);
    w.o = matrix(p + "self_attn.o_proj.weight", hidden, q_dim);
    w.gate = matrix(p + "mlp.gate_proj.weight", c.intermediate_size, hidden);
    w.up = matrix(p + "mlp.up_proj.weight", c.intermediate_size, hidden);
    w.down = matrix(p + "mlp.down_proj.weight", hidden, c.intermediate_size);
    if (c.attention_bias) {
      w.q_bias = vec(p + "self_attn.q_proj.bias", q_dim);
      w.k_bias = vec(p + "self_attn.k_proj.bias", kv_dim);
      w.v_bias = vec(p + "self_attn.v_proj.bias", kv_dim);
    }
    if (m->checkpoint_) {
      for (auto [matrix_ptr, heads] : {std::pair{&w.q, c.heads}, std::pair{&w.k, c.kv_heads}}) {
        const std::string name = p + (matrix_ptr == &w.q ? "self_attn.q_proj.weight" : "self_attn.k_proj.weight");
        m->owned_.push_back(interleaved_to_half_rows(get(name), heads, c.head_dim));
        matrix_ptr->data = reinterpret_cast<const uint8_t*>(m->owned_.back().data());
      }
    }
    m->layers_.push_back(std::move(w));
  }
  m->embedding_ = matrix("model.embed_tokens.weight", c.vocab_size, hidden);
  m->final_norm_ = vec("model.norm.weight", hidden);
  m->lm_head_ = c.tie_word_embeddings ? m->embedding_ : matrix("lm_head.weight", c.vocab_size, hidden);
  return m;
}

}  // namespace ringkv
