// Drawing the next token from a vocabulary of logits: ms per token of sample_token_cpu (the
// nucleus by a byte-wise search) next to the textbook method measured in the same run (sort the
// vocabulary by probability, keep the prefix that reaches top-p), and of sample_token_gpu where a
// GPU is present.
// usage: bench_sampling [VOCAB,...] (default 32000,128256)
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <numeric>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "kernels/sample_token.hpp"
#ifdef RINGKV_BENCH_GPU
#include "bench/gpu_timing.hpp"
#include "kernels/sample_token_gpu.hpp"
#endif

namespace ringkv {

namespace {
// The peer: probabilities sorted, the nucleus a prefix of them, the draw along that order.
int32_t sample_by_sorting(const std::vector<float>& logits, float temperature, float top_p, double u) {
  const float largest = *std::max_element(logits.begin(), logits.end());
  std::vector<double> p(logits.size());
  double total = 0;
  for (size_t i = 0; i < p.size(); ++i) total += p[i] = std::exp((logits[i] - largest) / temperature);
  std::vector<int32_t> order(p.size());
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(), [&](int32_t a, int32_t b) { return p[a] > p[b] || (p[a] == p[b] && a < b); });
  size_t keep = 0;
  double mass = 0;
  while (keep < order.size() && mass < top_p * total) mass += p[order[keep++]];
  double left = u * mass;
  for (size_t k = 0; k < keep; ++k)
    if ((left -= p[order[k]]) <= 0) return order[k];
  return order[keep - 1];
}

// Keeps a result from being optimized away.
inline void keep(int32_t token) { asm volatile("" : : "r"(token) : "memory"); }

template <class F>
double ms_per_call(F&& f, int calls) {
  const auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < calls; ++i) f(i);
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count() / calls;
}
}  // namespace

int run(const std::vector<int>& vocabs) {
  std::printf("Next-token sampling, temperature 0.7, top-p 0.9 and 1.0, logits ~ N(0, 3^2); ms per token\n");
  std::printf("%8s %6s %12s %14s %10s\n", "vocab", "top-p", "byte search", "sorting (peer)", "GPU");
  for (int vocab : vocabs)
    for (float top_p : {0.9f, 1.0f}) {
      std::mt19937 rng(1);
      std::normal_distribution<float> normal;
      std::vector<float> logits(vocab);
      for (float& x : logits) x = 3 * normal(rng);
      std::vector<double> u(64);
      for (double& x : u) x = std::uniform_real_distribution<double>(0, 1)(rng);
      const double ours = ms_per_call([&](int i) { keep(sample_token_cpu(logits.data(), logits.size(), 0.7f, top_p, u[i % 64])); }, 64);
      const double peer = ms_per_call([&](int i) { keep(sample_by_sorting(logits, 0.7f, top_p, u[i % 64])); }, 16);
      double gpu = 0;
#ifdef RINGKV_BENCH_GPU
      if (cuda_device_count() > 0) {
        DeviceBuffer<float> d_logits(logits.size());
        DeviceBuffer<int32_t> token(1);
        d_logits.upload(logits.data());
        gpu = median_ms([&] { sample_token_gpu(d_logits.data(), vocab, 0.7f, top_p, u[0], token.data(), nullptr); }, 50);
      }
#endif
      std::printf("%8d %6.1f %12.3f %14.3f ", vocab, top_p, ours, peer);
      if (gpu > 0)
        std::printf("%10.3f\n", gpu);
      else
        std::printf("%10s\n", "-");
    }
  return 0;
}

}  // namespace ringkv

int main(int argc, char** argv) {
  std::vector<int> vocabs{32000, 128256};
  if (argc > 1) {
    vocabs.clear();
    std::stringstream list(argv[1]);
    for (std::string item; std::getline(list, item, ',');) vocabs.push_back(std::stoi(item));
  }
  return ringkv::run(vocabs);
}
