#include "runtime/transformer.hpp"

#include <algorithm>
#include <cmath>

#include "kernels/error.hpp"
#include "kernels/transformer_ops.hpp"

namespace ringkv {

Transformer::Transformer(const ModelWeights& weights, size_t context_tokens)
    : weights_(weights), rope_(model_rope(weights.config(), context_tokens)) {
  attention_scale_ = static_cast<float>(rope_.attention_factor * rope_.attention_factor / std::sqrt(config().head_dim));
}

ShardConfig Transformer::shard_config(const KVSpec& spec, int page_size, size_t memory_budget_bytes) const {
  ShardConfig s;
  s.layers = config().layers;
  s.kv_heads = config().kv_heads;
  s.head_dim = config().head_dim;
  s.page_size = page_size;
  s.spec = spec;
  s.rope = rope_.table;
  s.memory_budget_bytes = memory_budget_bytes;
  return s;
}

void Transformer::forward(std::span<const int32_t> tokens, int first_position, KVShard& kv, std::vector<float>& logits,
                          bool all_logits, const ActivationObserver* observer) const {
  const int n = static_cast<int>(tokens.size());
  // One token without observers is a decode step: attention reads the compressed pages directly.
  SequenceAttention attention = n == 1 && !observer ? SequenceAttention::decode(kv, nullptr, first_position, 0)
                                                    : SequenceAttention::prefill(kv, nullptr, {{first_position, n}});
  forward(tokens, attention, logits, all_logits, observer);
}

void Transformer::forward(std::span<const int32_t> tokens, SequenceAttention& attention, std::vector<float>& logits,
                          bool all_logits, const ActivationObserver* observer) const {
  const ModelConfig& c = config();
  const int n = static_cast<int>(tokens.size());
  RINGKV_REQUIRE(n == attention.tokens(), "forward: " + std::to_string(n) + " tokens for " +
                                              std::to_string(attention.tokens()) + " positions");
  RINGKV_REQUIRE(!observer || attention.runs().size() == 1, "activation observers need one run of positions");
  const AttentionShape shape{c.heads, c.kv_heads, c.head_dim, attention_scale_};
  const int hidden = c.hidden_size, d = c.head_dim, q_dim = c.heads * d, kv_dim = c.kv_heads * d;
  const size_t rows = static_cast<size_t>(n);
  std::vector<float> x(rows * hidden), h(rows * hidden), q(rows * q_dim), k(rows * kv_dim), v(rows * kv_dim);
  std::vector<float> attn(rows * q_dim), gate(rows * c.intermediate_size), up(rows * c.intermediate_size);
  for (int i = 0; i < n; ++i) {
    RINGKV_REQUIRE(tokens[i] >= 0 && tokens[i] < c.vocab_size,
                   "token id " + std::to_string(tokens[i]) + " is outside the vocabulary of " + std::to_string(c.vocab_size));
    weights_.embedding().row(tokens[i], x.data() + static_cast<size_t>(i) * hidden);
  }
  std::vector<std::vector<double>> received;
  for (int l = 0; l < c.layers; ++l) {
    const LayerWeights& w = weights_.layers()[l];
    rms_norm_cpu(x.data(), n, hidden, w.attention_norm.data(), static_cast<float>(c.rms_norm_eps), h.data());
    linear(h.data(), n, w.q, w.q_bias.empty() ? nullptr : w.q_bias.data(), q.data());
    linear(h.data(), n, w.k, w.k_bias.empty() ? nullptr : w.k_bias.data(), k.data());
    linear(h.data(), n, w.v, w.v_bias.empty() ? nullptr : w.v_bias.data(), v.data());
    size_t row = 0;
    for (const TokenRun& run : attention.runs()) {
      rope_heads_cpu(q.data() + row * q_dim, run.tokens, c.heads, d, run.first_position, rope_.table);
      row += run.tokens;
    }
    const bool want_received = observer && observer->wants_received_attention;
    if (want_received) received.assign(c.kv_heads, {});
    attention.run(l, shape, q.data(), k.data(), v.data(), attn.data(), want_received ? &received : nullptr);
    if (observer)
      observer->observe({l, attention.runs()[0].first_position, n, k.data(), v.data(), q.data(),
                         want_received ? &received : nullptr});
    linear(attn.data(), n, w.o, nullptr, h.data());
    for (size_t i = 0; i < x.size(); ++i) x[i] += h[i];

    rms_norm_cpu(x.data(), n, hidden, w.mlp_norm.data(), static_cast<float>(c.rms_norm_eps), h.data());
    linear(h.data(), n, w.gate, nullptr, gate.data());
    linear(h.data(), n, w.up, nullptr, up.data());
    silu_mul_cpu(gate.data(), up.data(), gate.size());
    linear(gate.data(), n, w.down, nullptr, h.data());
    for (size_t i = 0; i < x.size(); ++i) x[i] += h[i];
  }
  logits.clear();
  if (n == 0) return;
  const int first_row = all_logits ? 0 : n - 1, out_rows = n - first_row;
  rms_norm_cpu(x.data() + static_cast<size_t>(first_row) * hidden, out_rows, hidden, weights_.final_norm().data(),
               static_cast<float>(c.rms_norm_eps), h.data());
  logits.resize(static_cast<size_t>(out_rows) * c.vocab_size);
  linear(h.data(), out_rows, weights_.lm_head(), nullptr, logits.data());
}

void Transformer::prefill(std::span<const int32_t> tokens, int first_position, int chunk_tokens, KVShard& kv,
                          std::vector<float>& logits, bool all_logits, const ActivationObserver* observer) const {
  RINGKV_REQUIRE(chunk_tokens > 0, "prefill chunk size must be positive");
  RINGKV_REQUIRE(!tokens.empty(), "prefill needs at least one token");
  logits.clear();
  std::vector<float> chunk_logits;
  for (size_t begin = 0; begin < tokens.size(); begin += chunk_tokens) {
    const size_t n = std::min(tokens.size() - begin, static_cast<size_t>(chunk_tokens));
    const bool last = begin + n == tokens.size();
    forward(tokens.subspan(begin, n), first_position + static_cast<int>(begin), kv, chunk_logits, all_logits, observer);
    if (all_logits || last) logits.insert(logits.end(), chunk_logits.begin(), chunk_logits.end());
  }
}

}  // namespace ringkv
