#include "kvstore/synthetic_kv.hpp"

#include <algorithm>
#include <cmath>
#include <random>

#include "kernels/error.hpp"
#include "kernels/rope.hpp"

namespace ringkv {

namespace {

struct Rng {
  std::mt19937_64 engine;
  std::normal_distribution<float> normal{0.0f, 1.0f};
  std::uniform_real_distribution<float> uniform{0.0f, 1.0f};
  float n() { return normal(engine); }
  float u() { return uniform(engine); }
};

// One role of one (layer, head): x_t = offset + scale * (W z_t + noise), z_t a drifting latent.
struct ChannelModel {
  int dim, rank;
  std::vector<float> mixing, scale, offset;  // mixing: [dim][rank]

  ChannelModel(Rng& rng, int d, int r, int outlier_channels, float outlier_scale, bool slow_channels)
      : dim(d), rank(r), mixing(static_cast<size_t>(d) * r), scale(d), offset(d) {
    for (float& m : mixing) m = rng.n() / std::sqrt(static_cast<float>(r));
    for (int c = 0; c < d; ++c) {
      scale[c] = std::exp(0.4f * rng.n());
      offset[c] = 0.2f * rng.n();
    }
    for (int i = 0; i < outlier_channels; ++i) {
      // Keys' outlier channels sit in the slowly rotating (last) channels of each RoPE half.
      const int c = slow_channels ? (i % 2 ? d - 1 - i / 2 : d / 2 - 1 - i / 2) : static_cast<int>(rng.u() * d) % d;
      scale[c] *= outlier_scale;
      offset[c] += outlier_scale * (rng.u() < 0.5f ? -1.0f : 1.0f);
    }
  }

  void sample(Rng& rng, const std::vector<float>& z, float norm, float noise, float* out) const {
    for (int c = 0; c < dim; ++c) {
      float s = 0;
      for (int k = 0; k < rank; ++k) s += mixing[static_cast<size_t>(c) * rank + k] * z[k];
      out[c] = norm * (offset[c] + scale[c] * (s + noise * rng.n()));
    }
  }
};

// Entropy in nats of softmax(scale * logits).
double softmax_entropy(const std::vector<double>& logits, double scale) {
  const double top = *std::max_element(logits.begin(), logits.end());
  double z = 0, weighted = 0;
  for (double l : logits) {
    const double w = std::exp(scale * (l - top));
    z += w;
    weighted += w * (l - top);
  }
  return std::log(z) - scale * weighted / z;
}

// The scale at which softmax(scale * logits) has entropy `target`, by bisection on the log of the
// scale (the entropy falls as the scale grows), bracketed around the inverse spread of the logits.
double scale_for_entropy(const std::vector<double>& logits, double target) {
  double mean = 0, m2 = 0;
  for (double l : logits) mean += l, m2 += l * l;
  mean /= static_cast<double>(logits.size());
  const double spread = std::sqrt(std::max(m2 / static_cast<double>(logits.size()) - mean * mean, 1e-30));
  double lo = 1e-2 / spread, hi = 1e3 / spread;
  for (int i = 0; i < 24; ++i) {
    const double mid = std::sqrt(lo * hi);
    (softmax_entropy(logits, mid) > target ? lo : hi) = mid;
  }
  return std::sqrt(lo * hi);
}

void add_direction(float* q, const float* v, int d, float weight) {
  double norm2 = 0;
  for (int c = 0; c < d; ++c) norm2 += static_cast<double>(v[c]) * v[c];
  const float k = weight / static_cast<float>(std::sqrt(std::max(norm2, 1e-30)));
  for (int c = 0; c < d; ++c) q[c] += k * v[c];
}

// Queries (post-RoPE, at position `tokens`) point at a few earlier keys (two recent, two anywhere),
// at the sink with a random weight and at the keys' mean, which also favours large-norm tokens.
// Their length sets the attention entropy to 30-60% of the uniform one: peaked like a trained
// model's heads, with a share on the sink, never one-hot.
void make_queries(Rng& rng, const SyntheticKVOptions& o, const std::vector<float>& keys_post,
                  const std::vector<float>& key_offset, float* queries) {
  const int d = o.head_dim, recent = std::min(o.tokens, 256);
  std::vector<double> logits(o.tokens);
  for (int q = 0; q < o.n_queries; ++q) {
    float* qv = queries + static_cast<size_t>(q) * d;
    std::fill(qv, qv + d, 0.0f);
    for (int j = 0; j < 4; ++j) {
      const int span = j < 2 ? recent : o.tokens;
      const int src = o.tokens - 1 - static_cast<int>(rng.u() * span) % span;
      add_direction(qv, keys_post.data() + static_cast<size_t>(src) * d, d, 1.0f);
    }
    add_direction(qv, keys_post.data(), d, 3.0f * rng.u());
    add_direction(qv, key_offset.data(), d, 0.5f);
    for (int c = 0; c < d; ++c) qv[c] += 0.3f * rng.n() / std::sqrt(static_cast<float>(d));
    for (int t = 0; t < o.tokens; ++t) {
      double s = 0;
      for (int c = 0; c < d; ++c) s += static_cast<double>(qv[c]) * keys_post[static_cast<size_t>(t) * d + c];
      logits[t] = s / std::sqrt(static_cast<double>(d));
    }
    const double target = (0.3 + 0.3 * rng.u()) * std::log(static_cast<double>(o.tokens));
    const float scale = static_cast<float>(scale_for_entropy(logits, target));
    for (int c = 0; c < d; ++c) qv[c] *= scale;
  }
}

void fill_stream(Rng& model_rng, Rng& rng, const SyntheticKVOptions& o, const RopeTable& rope, float* keys,
                 float* values, float* queries) {
  const int d = o.head_dim, rank = std::max(2, d / 8);
  const ChannelModel key_model(model_rng, d, rank, 4, 6.0f, true), value_model(model_rng, d, rank, 1, 2.5f, false);
  std::vector<float> zk(rank), zv(rank), drift(rank, 0.0f);
  for (int t = 0; t < o.tokens; ++t) {
    for (int k = 0; k < rank; ++k) {
      drift[k] = 0.999f * drift[k] + 0.045f * rng.n();  // slow drift along the sequence
      zk[k] = rng.n() + drift[k];
      zv[k] = rng.n() + 0.5f * drift[k];
    }
    const bool sink = t == 0, heavy = rng.u() < 0.005f;
    const float key_norm = sink ? 6.0f : heavy ? 3.0f + 2.0f * rng.u() : 1.0f;
    const float value_norm = (sink ? 0.3f : heavy ? 4.0f : 1.0f) * std::exp(0.3f * rng.n());
    key_model.sample(rng, zk, key_norm, 0.5f, keys + static_cast<size_t>(t) * d);
    value_model.sample(rng, zv, value_norm, 0.7f, values + static_cast<size_t>(t) * d);
  }
  std::vector<float> keys_post(keys, keys + static_cast<size_t>(o.tokens) * d);
  apply_rope_rows(keys_post.data(), o.tokens, 0, rope);
  make_queries(rng, o, keys_post, key_model.offset, queries);
}

}  // namespace

KVDump make_synthetic_kv(const SyntheticKVOptions& o) {
  RINGKV_REQUIRE(o.layers > 0 && o.kv_heads > 0 && o.tokens > 0 && o.n_queries >= 0 && o.head_dim >= 4 &&
                     o.head_dim % 2 == 0 && o.query_heads_per_kv > 0 && o.rope_theta > 0,
                 "synthetic KV: layers, KV heads, tokens, query heads per KV head and rope_theta must be positive, "
                 "head_dim even and at least 4");
  KVDump d;
  d.layers = o.layers, d.kv_heads = o.kv_heads, d.head_dim = o.head_dim, d.tokens = o.tokens;
  d.query_heads_per_kv = o.query_heads_per_kv, d.n_queries = o.n_queries, d.rope_theta = o.rope_theta;
  const size_t streams = static_cast<size_t>(o.layers) * o.kv_heads;
  d.keys.resize(streams * d.stream_elements());
  d.values.resize(d.keys.size());
  d.queries.resize(streams * o.n_queries * o.head_dim);
  const RopeTable rope = RopeTable::plain(o.head_dim, o.rope_theta);
  // Every (layer, head) draws from its own generators, so streams run in parallel and the result
  // does not depend on the thread count.
#pragma omp parallel for schedule(dynamic)
  for (size_t s = 0; s < streams; ++s) {
    Rng model_rng{std::mt19937_64(o.model_seed * 1000003ull + s)};
    Rng rng{std::mt19937_64(o.seed * 1000003ull + s + 0x9e3779b97f4a7c15ull)};
    const int layer = static_cast<int>(s) / o.kv_heads, head = static_cast<int>(s) % o.kv_heads;
    fill_stream(model_rng, rng, o, rope, d.keys_at(layer, head), d.values_at(layer, head), d.queries_at(layer, head));
  }
  return d;
}

}  // namespace ringkv
