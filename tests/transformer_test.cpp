// The CPU forward pass: against a plain full-attention reference written from the formulas, and
// chunked prefill against token-by-token decode for every codec (the cache each query sees must
// not depend on how the prompt was chunked).
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <numeric>
#include <random>

#include "kernels/error.hpp"
#include "runtime/model_calibration.hpp"
#include "runtime/random_model.hpp"
#include "runtime/safetensors.hpp"
#include "runtime/transformer.hpp"
#include "test_util.hpp"

namespace ringkv {
namespace {

ModelConfig tiny_config() {
  ModelConfig c;
  c.hidden_size = 64, c.intermediate_size = 96, c.layers = 2, c.heads = 4, c.kv_heads = 2, c.head_dim = 16;
  c.vocab_size = 101, c.max_position_embeddings = 1024, c.rope_theta = 10000, c.rms_norm_eps = 1e-5;
  return c;
}

std::string model_dir(const std::string& tag) {
  return ::testing::TempDir() + "/ringkv_model_" + ::testing::UnitTest::GetInstance()->current_test_info()->name() + tag;
}

std::vector<int32_t> random_tokens(int n, int vocab, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<int32_t> t(n);
  for (int32_t& x : t) x = static_cast<int32_t>(rng() % vocab);
  return t;
}

// Logits of every position by the textbook formulas: full causal attention in double, no cache.
std::vector<double> reference_logits(const std::string& dir, const ModelConfig& c, const std::vector<int32_t>& tokens) {
  WeightStore w(dir);
  const int n = static_cast<int>(tokens.size()), H = c.hidden_size, d = c.head_dim, F = c.intermediate_size;
  auto get = [&](const std::string& name) { return w.get(name).to_float(w.get(name).shape); };
  auto matvec = [](const std::vector<float>& m, const std::vector<double>& x, int rows) {
    std::vector<double> y(rows, 0.0);
    const size_t cols = x.size();
    for (int r = 0; r < rows; ++r)
      for (size_t k = 0; k < cols; ++k) y[r] += m[r * cols + k] * x[k];
    return y;
  };
  auto norm = [&](const std::vector<double>& x, const std::vector<float>& g) {
    double ss = 0;
    for (double v : x) ss += v * v;
    const double inv = 1.0 / std::sqrt(ss / x.size() + c.rms_norm_eps);
    std::vector<double> y(x.size());
    for (size_t i = 0; i < x.size(); ++i) y[i] = x[i] * inv * g[i];
    return y;
  };
  auto rope = [&](std::vector<double>& v, int heads, int pos) {
    for (int h = 0; h < heads; ++h)
      for (int i = 0; i < d / 2; ++i) {
        const double f = std::pow(c.rope_theta, -2.0 * i / d), a = v[h * d + i], b = v[h * d + i + d / 2];
        v[h * d + i] = a * std::cos(pos * f) - b * std::sin(pos * f);
        v[h * d + i + d / 2] = b * std::cos(pos * f) + a * std::sin(pos * f);
      }
  };
  const std::vector<float> embed = get("model.embed_tokens.weight");
  std::vector<std::vector<double>> x(n, std::vector<double>(H));
  for (int t = 0; t < n; ++t)
    for (int i = 0; i < H; ++i) x[t][i] = embed[static_cast<size_t>(tokens[t]) * H + i];
  for (int l = 0; l < c.layers; ++l) {
    const std::string p = "model.layers." + std::to_string(l) + ".";
    const auto wq = get(p + "self_attn.q_proj.weight"), wk = get(p + "self_attn.k_proj.weight"),
               wv = get(p + "self_attn.v_proj.weight"), wo = get(p + "self_attn.o_proj.weight");
    std::vector<std::vector<double>> q(n), k(n), v(n);
    for (int t = 0; t < n; ++t) {
      const auto h = norm(x[t], get(p + "input_layernorm.weight"));
      q[t] = matvec(wq, h, c.heads * d), k[t] = matvec(wk, h, c.kv_heads * d), v[t] = matvec(wv, h, c.kv_heads * d);
      rope(q[t], c.heads, t), rope(k[t], c.kv_heads, t);
    }
    for (int t = 0; t < n; ++t) {
      std::vector<double> attn(c.heads * d, 0.0);
      for (int h = 0; h < c.heads; ++h) {
        const int kh = h / (c.heads / c.kv_heads);
        std::vector<double> s(t + 1);
        double m = -1e300, sum = 0;
        for (int j = 0; j <= t; ++j) {
          s[j] = 0;
          for (int i = 0; i < d; ++i) s[j] += q[t][h * d + i] * k[j][kh * d + i];
          s[j] /= std::sqrt(static_cast<double>(d));
          m = std::max(m, s[j]);
        }
        for (double& e : s) sum += (e = std::exp(e - m));
        for (int j = 0; j <= t; ++j)
          for (int i = 0; i < d; ++i) attn[h * d + i] += s[j] / sum * v[j][kh * d + i];
      }
      const auto o = matvec(wo, attn, H);
      for (int i = 0; i < H; ++i) x[t][i] += o[i];
      const auto h = norm(x[t], get(p + "post_attention_layernorm.weight"));
      const auto g = matvec(get(p + "mlp.gate_proj.weight"), h, F), u = matvec(get(p + "mlp.up_proj.weight"), h, F);
      std::vector<double> a(F);
      for (int i = 0; i < F; ++i) a[i] = g[i] / (1 + std::exp(-g[i])) * u[i];
      const auto down = matvec(get(p + "mlp.down_proj.weight"), a, H);
      for (int i = 0; i < H; ++i) x[t][i] += down[i];
    }
  }
  const auto head = get(c.tie_word_embeddings ? "model.embed_tokens.weight" : "lm_head.weight");
  std::vector<double> logits;
  for (int t = 0; t < n; ++t) {
    const auto y = matvec(head, norm(x[t], get("model.norm.weight")), c.vocab_size);
    logits.insert(logits.end(), y.begin(), y.end());
  }
  return logits;
}

double max_relative_difference(const std::vector<float>& a, const std::vector<double>& b) {
  double diff = 0, scale = 0;
  for (size_t i = 0; i < b.size(); ++i) diff = std::max(diff, std::fabs(a[i] - b[i])), scale = std::max(scale, std::fabs(b[i]));
  return diff / scale;
}

TEST(Transformer, Fp32CacheMatchesThePlainReference) {
  for (bool tied : {false, true}) {
    ModelConfig c = tiny_config();
    c.tie_word_embeddings = tied;
    c.attention_bias = false;
    const std::string dir = model_dir(tied ? "_tied" : "_untied");
    write_random_model(dir, c, DType::F32, 7);
    const auto weights = ModelWeights::load(dir);
    const Transformer model(*weights, 1024);
    const std::vector<int32_t> tokens = random_tokens(150, c.vocab_size, 3);
    KVShard kv(model.shard_config(KVSpec::parse("fp32"), 32, SIZE_MAX), nullptr);
    std::vector<float> logits;
    model.prefill(tokens, 0, 40, kv, logits, true);
    const std::vector<double> expected = reference_logits(dir, c, tokens);
    ASSERT_EQ(logits.size(), expected.size());
    EXPECT_LT(max_relative_difference(logits, expected), 2e-5) << (tied ? "tied" : "untied");
    std::filesystem::remove_all(dir);
  }
}

TEST(Transformer, ChunkedPrefillSeesTheCacheAsTokenByTokenDecodeDoes) {
  const ModelConfig c = tiny_config();
  const std::string dir = model_dir("");
  write_random_model(dir, c, DType::BF16, 11);
  const auto weights = ModelWeights::load(dir);
  const Transformer model(*weights, 1024);
  const std::vector<int32_t> tokens = random_tokens(120, c.vocab_size, 5);
  const std::vector<KVSpec> specs = {KVSpec::parse("bf16"), KVSpec::parse("int:bits=2,group=16"),
                                     KVSpec::parse("kvquant:bits=3,outliers=0.02,sink=1"),
                                     KVSpec::parse("cq:channels=4,bits=6"), KVSpec::parse("rvq:depth=2,codes=16,group=8")};
  const CollectedKV collected = collect_kv(model, random_tokens(600, c.vocab_size, 9), 200, 64, 8);
  const Calibration cal = learn_calibration(collected, specs, 32, model.rope().table);
  for (const KVSpec& spec : specs) {
    KVShard chunked(model.shard_config(spec, 32, SIZE_MAX), &cal), stepped(model.shard_config(spec, 32, SIZE_MAX), &cal);
    std::vector<float> prefill_logits, step_logits, all_steps;
    model.prefill(tokens, 0, 37, chunked, prefill_logits, true);
    for (size_t t = 0; t < tokens.size(); ++t) {
      model.forward(std::span(tokens).subspan(t, 1), static_cast<int>(t), stepped, step_logits, false);
      all_steps.insert(all_steps.end(), step_logits.begin(), step_logits.end());
    }
    EXPECT_LT(test::relative_error(prefill_logits.data(), all_steps.data(), all_steps.size()), 1e-4) << spec.text();
    EXPECT_EQ(chunked.stats().total(), stepped.stats().total()) << spec.text();
  }
  std::filesystem::remove_all(dir);
}

TEST(Transformer, RefusesTokensOutsideTheVocabulary) {
  const ModelConfig c = tiny_config();
  const std::string dir = model_dir("");
  write_random_model(dir, c, DType::BF16, 1);
  const auto weights = ModelWeights::load(dir);
  const Transformer model(*weights, 64);
  KVShard kv(model.shard_config(KVSpec::parse("bf16"), 32, SIZE_MAX), nullptr);
  std::vector<float> logits;
  const std::vector<int32_t> bad = {1, 2, 101};
  EXPECT_THROW(model.prefill(bad, 0, 8, kv, logits, false), Error);
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace ringkv
