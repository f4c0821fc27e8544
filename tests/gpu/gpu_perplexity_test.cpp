// ringkv perplexity on the GPU against the CPU backend on a real model (reftiny-14m): the same
// perplexity and KL divergence within bf16 rounding, and the same stored bits per element as the
// CPU store reports them, over windows whose chunks end mid-page, with one GPU sequence restarted
// per window and codec. Skipped without a CUDA device or without the model.
#include <gtest/gtest.h>

#include <cmath>

#include "kernels/cuda_check.hpp"
#include "runtime/gpu/gpu_backend.hpp"
#include "runtime/perplexity.hpp"
#include "runtime/tokenizer.hpp"
#include "../test_util.hpp"

namespace ringkv {
namespace {

TEST(GpuPerplexity, MatchesTheCpuBackendOnReftiny) {
  if (cuda_device_count() == 0) GTEST_SKIP() << "no CUDA device: GPU perplexity test skipped";
  const std::string model_dir = test::models_dir() + "/reftiny-14m", text_path = test::data_dir() + "/kjv-new-testament.txt";
  RINGKV_REQUIRE_FILE(model_dir);
  RINGKV_REQUIRE_FILE(text_path);
  const auto weights = ModelWeights::load(model_dir);
  const auto tokenizer = load_tokenizer(model_dir, weights->config().vocab_size);
  const std::vector<int32_t> tokens = tokenizer->encode(test::read_file(text_path).substr(30000, 8000));
  PerplexityOptions o;
  o.window = 300, o.chunk = 100, o.max_windows = 3;
  ASSERT_GE(tokens.size(), 3u * o.window);
  const std::vector<KVSpec> specs = {KVSpec::parse("bf16"), KVSpec::parse("int:bits=4"), KVSpec::parse("kvquant:bits=4,nuq=0"),
                                     KVSpec::parse("kvquant:bits=2,nuq=0,outliers=0.01")};
  Communicator& comm = Communicator::world();
  const Transformer model(*weights, o.window);
  const auto cpu = make_cpu_window_evaluator(model, nullptr, o);
  const auto gpu = make_gpu_window_evaluator(*weights, nullptr, o, comm);
  const auto want = evaluate_perplexity(*cpu, weights->config(), tokens, specs, o, comm);
  const auto got = evaluate_perplexity(*gpu, weights->config(), tokens, specs, o, comm);
  ASSERT_EQ(got.size(), specs.size());
  for (size_t s = 0; s < specs.size(); ++s) {
    EXPECT_EQ(got[s].predictions, want[s].predictions);
    // bf16 activations into every GEMM: about 1% of the logits, well under 1% of the perplexity.
    EXPECT_NEAR(std::log(got[s].perplexity() / want[s].perplexity()), 0.0, 0.01) << specs[s].text();
    EXPECT_NEAR(got[s].mean_kl(), want[s].mean_kl(), 0.01 + 0.5 * want[s].mean_kl()) << specs[s].text();
    // The GPU stores the CPU store's pages; only the CPU's page headers differ.
    EXPECT_NEAR(got[s].bits_per_element, want[s].bits_per_element, 0.02 * want[s].bits_per_element) << specs[s].text();
    EXPECT_NEAR(got[s].projected_bits, want[s].projected_bits, 0.02 * want[s].projected_bits) << specs[s].text();
    std::printf("%-36s perplexity GPU %.4f CPU %.4f, KL GPU %.5f CPU %.5f, bits/el GPU %.3f CPU %.3f, projected %.3f / %.3f\n",
                specs[s].text().c_str(), got[s].perplexity(), want[s].perplexity(), got[s].mean_kl(), want[s].mean_kl(),
                got[s].bits_per_element, want[s].bits_per_element, got[s].projected_bits, want[s].projected_bits);
  }
}

}  // namespace
}  // namespace ringkv
