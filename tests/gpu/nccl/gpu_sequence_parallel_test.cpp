// One sequence over the job's GPUs (ring-attention prefill over NCCL, merged decode) against the
// same sequence on one GPU, on reftiny-14m: the same logits within rounding, the same greedy tokens,
// and bit for bit the same logits on every rank. Needs one GPU per rank and 2 or more ranks (ctest
// nccl_tests_two_ranks); skipped otherwise, or without the model.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>

#include "kernels/cuda_check.hpp"
#include "runtime/gpu/gpu_backend.hpp"
#include "runtime/gpu/gpu_sequence.hpp"
#include "../../test_util.hpp"
#include "../sequence_logits.hpp"

namespace ringkv {
namespace {

TEST(GpuSequenceParallel, RanksGiveOneGpusLogits) {
  Communicator& mpi = Communicator::world();
  if (mpi.size() < 2) GTEST_SKIP() << "needs 2 or more ranks (mpirun): test skipped";
  if (cuda_device_count() < mpi.local_size()) GTEST_SKIP() << "needs one CUDA device per rank on the node: test skipped";
  const std::string model_dir = test::models_dir() + "/reftiny-14m";
  RINGKV_REQUIRE_FILE(model_dir);
  const auto weights = ModelWeights::load(model_dir);
  const size_t vocab = weights->config().vocab_size;
  std::vector<int32_t> tokens(1000);
  uint64_t state = 99;
  for (int32_t& t : tokens) t = static_cast<int32_t>((state = state * 6364136223846793005ull + 1442695040888963407ull) >> 33) % 32000;
  const size_t prefill = tokens.size() - 30;

  // Chunks of 100 tokens per rank: several segments, pages split between ranks, decode across pages.
  const auto spread = make_gpu_sequence(*weights, KVSpec::parse("bf16"), nullptr, tokens.size(), 100, 128, mpi);
  const std::vector<float> got = test::sequence_logits(*spread, tokens, prefill, 100);
  GpuSequence one(*weights, KVSpec::parse("bf16"), nullptr, tokens.size(), 100, 128);
  const std::vector<float> want = test::sequence_logits(one, tokens, prefill, 100);
  ASSERT_EQ(got.size(), want.size());
  // The partial states merge in another order than on one GPU, with probabilities rounded to bf16 per part.
  EXPECT_LT(test::relative_error(got.data(), want.data(), want.size()), 1e-2);
  const size_t same_top = test::same_greedy_tokens(got, want, vocab);
  EXPECT_GE(same_top, tokens.size() * 97 / 100) << "greedy tokens agree at " << same_top << " of " << tokens.size();

  const std::span<const uint8_t> bytes(reinterpret_cast<const uint8_t*>(got.data()), got.size() * sizeof(float));
  const auto all = mpi.all_gather_bytes(bytes, "test: gather every rank's logits");
  for (int r = 1; r < mpi.size(); ++r) EXPECT_EQ(0, std::memcmp(all[r].data(), all[0].data(), bytes.size())) << "rank " << r;
  if (mpi.rank() == 0)
    std::printf("reftiny-14m, %zu tokens over %d GPUs: logits relative error %.2e against one GPU, greedy agreement %zu/%zu\n",
                tokens.size(), mpi.size(), test::relative_error(got.data(), want.data(), want.size()), same_top,
                tokens.size());
}

}  // namespace
}  // namespace ringkv
