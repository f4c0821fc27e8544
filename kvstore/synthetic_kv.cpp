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

void fill_stream(Rng& model_rng, Rng& rng, const SyntheticKVOptions& o, const RopeTable& rope, float* keys, float* values,
                 float* queries) {
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
  // Queries (post-RoPE): the sum of a few earlier tokens' post-RoPE keys, which they then attend to
  // strongly, plus the keys' offset direction, scaled so that logits q.k/sqrt(d) have std 3.
  std::vector<float> post(static_cast<size_t>(o.tokens) * d);
  std::copy(keys, keys + post.size(), post.begin());
  apply_rope_rows(post.data(), o.tokens, 0, rope);
  for (int q = 0; q < o.n_queries; ++q) {
    float* qv = queries + static_cast<size_t>(q) * d;
    std::fill(qv, qv + d, 0.0f);
    for (int j = 0; j < 3; ++j) {
      const int src = static_cast<int>(rng.u() * o.tokens) % o.tokens;
      for (int c = 0; c < d; ++c) qv[c] += post[static_cast<size_t>(src) * d + c];
    }
    for (int c = 0; c < d; ++c) qv[c] += 0.5f * key_model.offset[c] + 0.5f * rng.n();
    double mean = 0, m2 = 0;
    for (int t = 0; t < o.tokens; ++t) {
      double s = 0;
      for (int c = 0; c < d; ++c) s += static_cast<double>(qv[c]) * post[static_cast<size_t>(t) * d + c];
      mean += s;
      m2 += s * s;
    }
    mean /= o.tokens;
    const double sd = std::sqrt(std::max(m2 / o.tokens - mean * mean, 1e-12));
    const float k = static_cast<float>(3.0 * std::sqrt(static_cast<double>(d)) / sd);  // logits = q.k / sqrt(d)
    for (int c = 0; c < d; ++c) qv[c] *= k;
  }
}

}  // namespace

KVDump make_synthetic_kv(const SyntheticKVOptions& o) {
  RINGKV_REQUIRE(o.layers > 0 && o.kv_heads > 0 && o.tokens > 0 && o.n_queries >= 0 && o.head_dim >= 4 &&
                     o.head_dim % 2 == 0,
                 "synthetic KV: layers, KV heads and tokens must be positive and head_dim even and at least 4");
  KVDump d;
  d.layers = o.layers, d.kv_heads = o.kv_heads, d.head_dim = o.head_dim, d.tokens = o.tokens;
  d.query_heads_per_kv = o.query_heads_per_kv, d.n_queries = o.n_queries, d.rope_theta = o.rope_theta;
  const size_t streams = static_cast<size_t>(o.layers) * o.kv_heads;
  d.keys.resize(streams * d.stream_elements());
  d.values.resize(d.keys.size());
  d.queries.resize(streams * o.n_queries * o.head_dim);
  const RopeTable rope = RopeTable::plain(o.head_dim, o.rope_theta);
  for (size_t s = 0; s < streams; ++s) {
    Rng model_rng{std::mt19937_64(o.model_seed * 1000003ull + s)};
    Rng rng{std::mt19937_64(o.seed * 1000003ull + s + 0x9e3779b97f4a7c15ull)};
    fill_stream(model_rng, rng, o, rope, d.keys.data() + s * d.stream_elements(), d.values.data() + s * d.stream_elements(),
                d.queries.data() + s * o.n_queries * o.head_dim);
  }
  return d;
}

}  // namespace ringkv
