// The whole forward pass on the GPU against the CPU backend on a real model (reftiny-14m) for each
// KV codec the GPU runs (CQ centroids, KVQuant levels and RVQ codebooks learned from the calibration text): chunked prefill
// (chunks that end mid-page, pages that fill mid-chunk, a chunk's 200 rows of logits in slices of
// 128 and 72) and decode steps (across a page's sealing)
// give the same logits within bf16 rounding and the same perplexity. Skipped without a CUDA device
// or without the model.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

#include "kernels/cuda_check.hpp"
#include "kvstore/codec.hpp"
#include "runtime/distributed_sequence.hpp"
#include "runtime/gpu/gpu_backend.hpp"
#include "runtime/gpu/gpu_sequence.hpp"
#include "runtime/model_calibration.hpp"
#include "runtime/tokenizer.hpp"
#include "../test_util.hpp"
#include "sequence_logits.hpp"

namespace ringkv {
namespace {

// Mean negative log-likelihood of tokens[t + 1] under logits row t.
double mean_nll(const std::vector<float>& logits, std::span<const int32_t> tokens, size_t vocab) {
  double nll = 0;
  for (size_t t = 0; t + 1 < tokens.size(); ++t) {
    const float* row = logits.data() + t * vocab;
    double top = row[0], sum = 0;
    for (size_t i = 1; i < vocab; ++i) top = std::max<double>(top, row[i]);
    for (size_t i = 0; i < vocab; ++i) sum += std::exp(row[i] - top);
    nll -= row[tokens[t + 1]] - top - std::log(sum);
  }
  return nll / static_cast<double>(tokens.size() - 1);
}

class GpuForward : public ::testing::TestWithParam<const char*> {};

TEST_P(GpuForward, MatchesTheCpuBackendOnReftiny) {
  if (cuda_device_count() == 0) GTEST_SKIP() << "no CUDA device: GPU forward test skipped";
  const std::string model_dir = test::models_dir() + "/reftiny-14m", text_path = test::data_dir() + "/kjv-new-testament.txt";
  RINGKV_REQUIRE_FILE(model_dir);
  RINGKV_REQUIRE_FILE(text_path);
  const KVSpec spec = KVSpec::parse(GetParam());
  const auto weights = ModelWeights::load(model_dir);
  const auto tokenizer = load_tokenizer(model_dir, weights->config().vocab_size);
  std::vector<int32_t> tokens = tokenizer->encode(test::read_file(text_path).substr(20000, 6000));
  tokens.resize(std::min<size_t>(tokens.size(), 900));
  ASSERT_GT(tokens.size(), 600u);
  const size_t prefill = tokens.size() - 40, vocab = weights->config().vocab_size;  // decode crosses position 896

  Transformer cpu_model(*weights, tokens.size());
  // Learned codecs take their tables from 4096 tokens of the calibration text, as `ringkv calibrate` does.
  std::unique_ptr<Calibration> calibration;
  if (codec_needs_calibration(spec.key)) {
    const std::string calibration_path = test::data_dir() + "/gcide-calibration.txt";
    RINGKV_REQUIRE_FILE(calibration_path);
    std::vector<int32_t> calibration_tokens = tokenizer->encode(test::read_file(calibration_path).substr(0, 40000));
    calibration_tokens.resize(std::min<size_t>(calibration_tokens.size(), 4096));
    const Transformer window_model(*weights, 1024);
    calibration = std::make_unique<Calibration>(learn_calibration(collect_kv(window_model, calibration_tokens, 1024, 256, 8),
                                                                  {&spec, 1}, 128, window_model.rope().table));
  }
  auto cpu_logits = [&](const KVSpec& kv_spec) {
    KVShard kv(cpu_model.shard_config(kv_spec, 128, SIZE_MAX), calibration.get());
    DistributedSequence cpu(cpu_model, kv, nullptr);
    return test::sequence_logits(cpu, tokens, prefill, 200);
  };
  const std::vector<float> want = cpu_logits(spec), uncompressed = cpu_logits(KVSpec::parse("bf16"));
  GpuSequence gpu(*weights, spec, calibration.get(), tokens.size(), 200, 128);
  const std::vector<float> got = test::sequence_logits(gpu, tokens, prefill, 200);
  ASSERT_EQ(got.size(), want.size());
  EXPECT_GT(gpu.stored_kv_bytes(), 0u);
  // Tokens drawn on the GPU from the last logits are those the CPU sampler draws from their copy.
  Sampler on_gpu({0.8, 0.9, 3}), on_cpu({0.8, 0.9, 3});
  const std::span<const float> last_logits(got.data() + got.size() - vocab, vocab);
  for (int draw = 0; draw < 20; ++draw) ASSERT_EQ(gpu.next_token(on_gpu, last_logits), on_cpu.next(last_logits)) << "draw " << draw;

  // bf16 activations into every GEMM, bf16 queries, and (INT) pages attended in bf16 during prefill:
  // about 1% of the logits' size. At 1 and 2 bits those roundings move keys and values across code
  // boundaries, and each move is a whole quantization step: the GPU may differ from the CPU by up to
  // half as much as the codec's own loss against an uncompressed cache (perplexity, greedy tokens).
  const double error = test::relative_error(got.data(), want.data(), want.size());
  const double cpu_ppl = std::exp(mean_nll(want, tokens, vocab)), gpu_ppl = std::exp(mean_nll(got, tokens, vocab));
  const double codec_loss = std::fabs(std::log(cpu_ppl / std::exp(mean_nll(uncompressed, tokens, vocab))));
  EXPECT_LT(std::fabs(std::log(gpu_ppl / cpu_ppl)), std::max(0.01, codec_loss / 2)) << "perplexity GPU " << gpu_ppl << " CPU " << cpu_ppl;
  const size_t same_top = test::same_greedy_tokens(got, want, vocab);
  const size_t codec_same_top = test::same_greedy_tokens(want, uncompressed, vocab);
  EXPECT_GE(same_top, std::min(tokens.size() * 95 / 100, codec_same_top))
      << "greedy tokens agree at " << same_top << " of " << tokens.size();
  if (codec_loss < 0.1) {
    EXPECT_LT(error, 3e-2);
  }
  std::printf("reftiny-14m, %s, %zu tokens: perplexity GPU %.4f, CPU %.4f (uncompressed cache: CPU %.4f); greedy agreement "
              "%zu/%zu (CPU against uncompressed %zu); logits relative error %.2e\n",
              spec.text().c_str(), tokens.size(), gpu_ppl, cpu_ppl, std::exp(mean_nll(uncompressed, tokens, vocab)), same_top,
              tokens.size(), codec_same_top, error);
}

INSTANTIATE_TEST_SUITE_P(Codecs, GpuForward, ::testing::Values("bf16", "int:bits=4", "int:bits=3", "int:bits=2", "int:bits=1",
                                                                "cq:channels=4,bits=8", "cq:channels=8,bits=8",
                                                                "kvquant:bits=4,nuq=0", "kvquant:bits=2,outliers=0.01,sink=1,qnorm=1",
                                                                "rvq:codes=64,depth=4,group=8"));

// Decode steps replayed as CUDA graphs (captured on an epoch's second step; a new epoch when a page
// seals, or the bf16 kernel's split count changes) give exactly the logits of plain launches:
// decode runs across page seals, with prefills in between (within a page, across pages, of one
// token), as a document's questions arrive in `ringkv qa`.
TEST(GpuDecodeGraphs, ReplayGivesTheLogitsOfPlainLaunches) {
  if (cuda_device_count() == 0) GTEST_SKIP() << "no CUDA device: GPU forward test skipped";
  const std::string model_dir = test::models_dir() + "/reftiny-14m";
  RINGKV_REQUIRE_FILE(model_dir);
  const auto weights = ModelWeights::load(model_dir);
  std::vector<int32_t> tokens(800);
  for (size_t i = 0; i < tokens.size(); ++i) tokens[i] = static_cast<int32_t>((i * 7919 + 13) % weights->config().vocab_size);
  // (prefill, decode) token counts in turn: 100 + 300 crosses three seals; 10 stays in a page; 200
  // seals pages during a prefill; 1 is a one-token prefill.
  const std::pair<size_t, size_t> turns[] = {{100, 300}, {10, 20}, {200, 40}, {1, 129}};
  auto run = [&](GpuSequence& sequence) {
    std::vector<float> all, step;
    size_t at = 0;
    for (const auto& [prefill, decode] : turns) {
      sequence.prefill(std::span(tokens).subspan(at, prefill), 64, step, true);
      all.insert(all.end(), step.begin(), step.end());
      at += prefill;
      for (size_t t = 0; t < decode; ++t, ++at) {
        sequence.decode(tokens[at], step);
        all.insert(all.end(), step.begin(), step.end());
      }
    }
    return all;
  };
  for (const char* spec : {"bf16", "int:bits=2", "int:bits=4"}) {
    GpuSequence replayed(*weights, KVSpec::parse(spec), nullptr, tokens.size(), 64, 128, true);
    GpuSequence plain(*weights, KVSpec::parse(spec), nullptr, tokens.size(), 64, 128, false);
    const std::vector<float> want = run(plain), got = run(replayed);
    ASSERT_EQ(got.size(), want.size());
    EXPECT_EQ(test::relative_error(got.data(), want.data(), want.size()), 0.0) << spec;
  }
}

TEST(GpuForwardRefusals, WhatItCannotHoldIsRefusedBeforeAllocating) {
  if (cuda_device_count() == 0) GTEST_SKIP() << "no CUDA device: GPU forward test skipped";
  const std::string model_dir = test::models_dir() + "/reftiny-14m";
  RINGKV_REQUIRE_FILE(model_dir);
  const auto weights = ModelWeights::load(model_dir);
  try {
    GpuSequence too_long(*weights, KVSpec::parse("bf16"), nullptr, size_t{1} << 34, 128, 128);  // 8 TiB of bf16 cache
    FAIL() << "a context far beyond the GPU's memory was accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("GiB of GPU memory"), std::string::npos) << e.what();
  }
  for (const char* spec : {"cq:channels=4,bits=8", "cq:channels=1,bits=14", "kvquant:bits=2", "kvquant:bits=5,nuq=0", "rvq:depth=4",
                           "rvq:codes=512", "rvq:group=2,depth=8", "int:bits=2,group=32", "int:bits=8", "int:bits=2|int:bits=4"})
    EXPECT_THROW(make_gpu_sequence(*weights, KVSpec::parse(spec), nullptr, 1024, 128, 128, Communicator::world()), Error) << spec;
  EXPECT_THROW(make_gpu_sequence(*weights, KVSpec::parse("int:bits=2"), nullptr, 1024, 128, 64, Communicator::world()), Error) << "pages of 64";
}

}  // namespace
}  // namespace ringkv
