#include "runtime/llama2c.hpp"

#include <cstring>

#include "kernels/error.hpp"

namespace ringkv {

Llama2cCheckpoint::Llama2cCheckpoint(const std::string& path) : file_(std::make_unique<MappedFile>(path)) {
  RINGKV_REQUIRE(file_->size() >= 28, path + " is truncated: no llama2.c header");
  int32_t h[7];
  std::memcpy(h, file_->data(), sizeof h);
  ModelConfig& c = config_;
  c.hidden_size = h[0], c.intermediate_size = h[1], c.layers = h[2], c.heads = h[3], c.kv_heads = h[4];
  c.tie_word_embeddings = h[5] > 0;
  c.vocab_size = h[5] < 0 ? -h[5] : h[5];
  c.max_position_embeddings = h[6];
  RINGKV_REQUIRE(c.heads > 0 && c.hidden_size > 0 && c.hidden_size % c.heads == 0 && c.layers > 0 && c.kv_heads > 0 &&
                     c.max_position_embeddings > 0 && c.layers < 4096,
                 path + " does not have a valid llama2.c header");
  c.head_dim = c.hidden_size / c.heads;
  c.rms_norm_eps = 1e-5;
  c.validate(path);

  // Sizes in floats, in file order; the RoPE tables llama2.c stores are skipped (computed instead).
  const size_t dim = c.hidden_size, hidden = c.intermediate_size, L = c.layers, kv_dim = size_t(c.kv_heads) * c.head_dim;
  const size_t vocab = c.vocab_size, rope_table = size_t(c.max_position_embeddings) * c.head_dim / 2;
  struct Stacked {
    const char* name;
    size_t per_layer;
    std::vector<int64_t> shape;
  };
  const std::vector<Stacked> layout = {
      {"input_layernorm", dim, {int64_t(dim)}},
      {"self_attn.q_proj", dim * dim, {int64_t(dim), int64_t(dim)}},
      {"self_attn.k_proj", kv_dim * dim, {int64_t(kv_dim), int64_t(dim)}},
      {"self_attn.v_proj", kv_dim * dim, {int64_t(kv_dim), int64_t(dim)}},
      {"self_attn.o_proj", dim * dim, {int64_t(dim), int64_t(dim)}},
      {"post_attention_layernorm", dim, {int64_t(dim)}},
      {"mlp.gate_proj", hidden * dim, {int64_t(hidden), int64_t(dim)}},
      {"mlp.down_proj", dim * hidden, {int64_t(dim), int64_t(hidden)}},
      {"mlp.up_proj", hidden * dim, {int64_t(hidden), int64_t(dim)}},
  };
  size_t floats = vocab * dim + dim + 2 * rope_table + (c.tie_word_embeddings ? 0 : vocab * dim);
  for (const Stacked& s : layout) floats += s.per_layer * L;
  const size_t expected = 28 + floats * 4;
  RINGKV_REQUIRE(file_->size() == expected, path + " has " + std::to_string(file_->size()) +
                                                " bytes; its header describes a checkpoint of " + std::to_string(expected) +
                                                " (truncated or not a llama2.c file?)");
  const uint8_t* p = file_->data() + 28;
  auto view = [&](const std::string& name, std::vector<int64_t> shape, size_t count) {
    TensorView v;
    v.name = name;
    v.dtype = DType::F32;
    v.shape = std::move(shape);
    v.data = p;
    p += count * 4;
    tensors_[name] = v;
  };
  view("model.embed_tokens.weight", {int64_t(vocab), int64_t(dim)}, vocab * dim);
  for (const Stacked& s : layout) {
    for (size_t l = 0; l < L; ++l) view("model.layers." + std::to_string(l) + "." + s.name + ".weight", s.shape, s.per_layer);
  }
  view("model.norm.weight", {int64_t(dim)}, dim);
  p += 2 * rope_table * 4;
  if (!c.tie_word_embeddings) view("lm_head.weight", {int64_t(vocab), int64_t(dim)}, vocab * dim);
}

}  // namespace ringkv
