#pragma once
// Shared helpers of the unit tests: structured random K/V rows, error measures, calibration.
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <cstdint>
#include <random>
#include <vector>

#include "kernels/half.hpp"
#include "kvstore/codec.hpp"

namespace ringkv::test {

// The real models and texts: $RINGKV_MODELS / $RINGKV_DATA, else ../shared beside the checkout.
inline std::string shared_dir(const char* env, const char* name) {
  if (const char* dir = std::getenv(env)) return dir;
  return std::string(RINGKV_SOURCE_DIR) + "/../shared/" + name;
}
inline std::string models_dir() { return shared_dir("RINGKV_MODELS", "models"); }
inline std::string data_dir() { return shared_dir("RINGKV_DATA", "data"); }

// A whole file's bytes.
inline std::string read_file(const std::string& path) {
  std::stringstream s;
  s << std::ifstream(path, std::ios::binary).rdbuf();
  return s.str();
}

// Skips the running test, saying what is missing, when a real model or text is absent.
#define RINGKV_REQUIRE_FILE(path)        \
  if (!std::filesystem::exists(path)) \
  GTEST_SKIP() << (path) << " is absent (set RINGKV_MODELS / RINGKV_DATA)"

// Rows with per-channel scales and offsets, a few outlier channels and a few large-norm tokens,
// like the keys and values of a trained model. Deterministic in `seed`.
inline std::vector<float> structured_rows(size_t n, int dim, uint64_t seed, bool outliers = true) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> scale(dim), offset(dim);
  for (int c = 0; c < dim; ++c) {
    scale[c] = 0.5f + std::fabs(normal(rng));
    offset[c] = 0.3f * normal(rng);
  }
  if (outliers)
    for (int c = 0; c < dim; c += 37) scale[c] *= 8.0f, offset[c] += 4.0f;
  std::vector<float> shared(dim);
  std::vector<float> rows(n * dim);
  for (size_t t = 0; t < n; ++t) {
    const float z = normal(rng);  // a latent factor shared by all channels: correlated channels
    const float norm = (outliers && t % 97 == 5) ? 6.0f : 1.0f;
    for (int c = 0; c < dim; ++c) {
      if (t == 0) shared[c] = normal(rng);
      rows[t * dim + c] = norm * (offset[c] + scale[c] * (0.6f * normal(rng) + 0.8f * z * shared[c]));
    }
  }
  return rows;
}

// Gaussian values rounded to bf16, as raw bf16 words.
inline std::vector<uint16_t> random_bf16(size_t n, uint64_t seed, float sigma) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> normal(0.f, sigma);
  std::vector<uint16_t> v(n);
  for (uint16_t& x : v) x = float_to_bf16(normal(rng));
  return v;
}

inline std::vector<float> gaussian(size_t n, uint64_t seed, float sigma = 1.0f) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> normal(0.0f, sigma);
  std::vector<float> v(n);
  for (float& x : v) x = normal(rng);
  return v;
}

inline double relative_error(const float* a, const float* b, size_t n) {
  double num = 0, den = 0;
  for (size_t i = 0; i < n; ++i) {
    num += (static_cast<double>(a[i]) - b[i]) * (static_cast<double>(a[i]) - b[i]);
    den += static_cast<double>(b[i]) * b[i];
  }
  return std::sqrt(num / std::max(den, 1e-30));
}

inline std::vector<int> iota_positions(size_t n, int first = 0) {
  std::vector<int> p(n);
  for (size_t i = 0; i < n; ++i) p[i] = first + static_cast<int>(i);
  return p;
}

// Learns the spec's tables for one (layer 0, head 0) on `rows` for both roles.
inline void calibrate(const CodecSpec& spec, const CodecContext& ctx, const RopeTable& rope, const std::vector<float>& rows,
                      Calibration& cal) {
  const std::vector<int> positions = iota_positions(rows.size() / ctx.head_dim);
  CalibrationSamples samples{rows.data(), positions.data(), nullptr, positions.size()};
  for (Role role : {Role::Key, Role::Value}) learn_codec_tables(spec, role, ctx, rope, samples, cal);
}

}  // namespace ringkv::test
