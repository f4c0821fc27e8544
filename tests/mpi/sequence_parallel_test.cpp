// Sequence parallelism on any number of ranks (ctest runs it on 1, 2, 3 and 4): a sequence whose
// cache is spread over the ranks gives the logits and tokens of the same sequence on one rank,
// for every codec, and each shard holds whole pages of the sequence.
#include <gtest/gtest.h>

#include <algorithm>
#include <climits>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <random>
#include <unistd.h>

#include "comm/communicator.hpp"
#include "runtime/distributed_sequence.hpp"
#include "runtime/model_calibration.hpp"
#include "runtime/random_model.hpp"

namespace ringkv {
namespace {

constexpr int kPage = 16;

ModelConfig tiny_config() {
  ModelConfig c;
  c.hidden_size = 64, c.intermediate_size = 96, c.layers = 2, c.heads = 4, c.kv_heads = 2, c.head_dim = 16;
  c.vocab_size = 101, c.max_position_embeddings = 1024, c.rope_theta = 10000, c.rms_norm_eps = 1e-5;
  return c;
}

std::vector<int32_t> random_tokens(int n, int vocab, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<int32_t> t(n);
  for (int32_t& x : t) x = static_cast<int32_t>(rng() % vocab);
  return t;
}

double relative_error(const std::vector<float>& got, const std::vector<float>& want) {
  double num = 0, den = 0;
  for (size_t i = 0; i < want.size(); ++i) num += std::pow(got[i] - want[i], 2), den += std::pow(want[i], 2);
  return std::sqrt(num / std::max(den, 1e-30));
}

// A document, a continuation, a question in the middle of it, more continuation: every logit of
// the prefills and every decode step, and the greedy tokens.
struct Transcript {
  std::vector<float> logits;
  std::vector<int32_t> generated;
};

Transcript run_session(const Transformer& model, KVShard& kv, Communicator* comm) {
  DistributedSequence sequence(model, kv, comm);
  Transcript t;
  std::vector<float> logits;
  auto decode = [&](int steps) {
    for (int i = 0; i < steps; ++i) {
      const int32_t next = static_cast<int32_t>(std::max_element(logits.end() - model.config().vocab_size, logits.end()) -
                                                (logits.end() - model.config().vocab_size));
      t.generated.push_back(next);
      sequence.decode(next, logits);
      t.logits.insert(t.logits.end(), logits.begin(), logits.end());
    }
  };
  sequence.prefill(random_tokens(150, model.config().vocab_size, 3), 24, logits, true);
  t.logits.insert(t.logits.end(), logits.begin(), logits.end());
  decode(20);
  sequence.prefill(random_tokens(37, model.config().vocab_size, 4), 8, logits, true);
  t.logits.insert(t.logits.end(), logits.begin(), logits.end());
  decode(12);
  EXPECT_EQ(sequence.length(), 150 + 20 + 37 + 12);
  return t;
}

class SequenceParallel : public ::testing::Test {
 protected:
  // A setup that fails on one rank would leave the others waiting in a collective: take the job down.
  static void SetUpTestSuite() {
    try {
      set_up();
    } catch (const std::exception& e) {
      abort_all(std::string("test setup: ") + e.what());
    }
  }
  static void set_up() {
    Communicator& comm = Communicator::world();
    // Named by rank 0's process so that jobs of different sizes running at once keep apart.
    const std::string stem = ::testing::TempDir() + "/ringkv_sequence_parallel_" + std::to_string(::getpid());
    std::vector<uint8_t> name(stem.begin(), stem.end());
    comm.broadcast_bytes(name, 0, "test: file stem");
    const std::string shared_stem(name.begin(), name.end());
    dir_ = new std::string(shared_stem + "_rank" + std::to_string(comm.rank()));
    write_random_model(*dir_, tiny_config(), DType::BF16, 11);
    weights_ = ModelWeights::load(*dir_).release();
    model_ = new Transformer(*weights_, 1024);
    // Rank 0 learns the codebooks; every rank reads the same file, as the command line does.
    const std::string path = shared_stem + ".cal";
    if (comm.rank() == 0) {
      const std::vector<KVSpec> specs = all_specs();
      learn_calibration(collect_kv(*model_, random_tokens(600, 101, 9), 200, 64, 8), specs, kPage, model_->rope().table)
          .save(path);
    }
    comm.barrier("test: calibration written");
    calibration_ = new Calibration(Calibration::load(path));
    comm.barrier("test: calibration read");
    if (comm.rank() == 0) std::filesystem::remove(path);
  }
  static void TearDownTestSuite() {
    delete calibration_;
    delete model_;
    delete weights_;
    std::filesystem::remove_all(*dir_);
    delete dir_;
  }
  static std::vector<KVSpec> all_specs() {
    std::vector<KVSpec> specs;
    for (const char* s : {"fp32", "bf16", "int:bits=2,group=16", "kvquant:bits=3,outliers=0.02,sink=1", "cq:channels=4,bits=6",
                          "rvq:depth=2,codes=16,group=8"})
      specs.push_back(KVSpec::parse(s));
    return specs;
  }
  static std::string* dir_;
  static ModelWeights* weights_;
  static Transformer* model_;
  static Calibration* calibration_;
};
std::string* SequenceParallel::dir_ = nullptr;
ModelWeights* SequenceParallel::weights_ = nullptr;
Transformer* SequenceParallel::model_ = nullptr;
Calibration* SequenceParallel::calibration_ = nullptr;

TEST_F(SequenceParallel, RanksGiveTheLogitsAndTokensOfOneRankForEveryCodec) {
  Communicator& comm = Communicator::world();
  for (const KVSpec& spec : all_specs()) {
    KVShard alone(model_->shard_config(spec, kPage, SIZE_MAX), calibration_);
    KVShard shard(model_->shard_config(spec, kPage, SIZE_MAX), calibration_);
    const Transcript want = run_session(*model_, alone, nullptr);
    const Transcript got = run_session(*model_, shard, &comm);
    ASSERT_EQ(got.logits.size(), want.logits.size()) << spec.text();
    EXPECT_LT(relative_error(got.logits, want.logits), 1e-5) << spec.text() << " on " << comm.size() << " ranks";
    EXPECT_EQ(got.generated, want.generated) << spec.text();
    // The same logits on every rank.
    const auto* bytes = reinterpret_cast<const uint8_t*>(got.logits.data());
    const auto all = comm.all_gather_bytes({bytes, got.logits.size() * sizeof(float)}, "test: gather logits");
    for (int r = 0; r < comm.size(); ++r) EXPECT_TRUE(all[r] == all[0]) << "rank " << r << " differs from rank 0";
  }
}

TEST_F(SequenceParallel, ShardsHoldWholePagesOfTheSequenceOnceAndStayLevel) {
  Communicator& comm = Communicator::world();
  KVShard shard(model_->shard_config(KVSpec::parse("int:bits=2,group=16"), kPage, SIZE_MAX), calibration_);
  run_session(*model_, shard, &comm);
  const int total = 150 + 20 + 37 + 12;
  for (int l = 0; l < tiny_config().layers; ++l)
    for (int h = 0; h < tiny_config().kv_heads; ++h) {
      const std::vector<int> mine = shard.decode_all(l, h).positions;
      const auto* bytes = reinterpret_cast<const uint8_t*>(mine.data());
      const auto all = comm.all_gather_bytes({bytes, mine.size() * sizeof(int)}, "test: gather positions");
      std::vector<int> every;
      size_t most = 0, least = SIZE_MAX;
      for (const auto& theirs : all) {
        const size_t n = theirs.size() / sizeof(int);
        const int* p = reinterpret_cast<const int*>(theirs.data());
        for (size_t i = 0; i < n; ++i) {
          // A rank's positions ascend, and a page is never split between ranks.
          if (i == 0) continue;
          EXPECT_LT(p[i - 1], p[i]);
          if (p[i] / kPage == p[i - 1] / kPage) {
            EXPECT_EQ(p[i], p[i - 1] + 1);
          } else {
            EXPECT_EQ(p[i] % kPage, 0);
          }
        }
        every.insert(every.end(), p, p + n);
        most = std::max(most, n), least = std::min(least, n);
      }
      std::sort(every.begin(), every.end());
      std::vector<int> expected(total);
      for (int i = 0; i < total; ++i) expected[i] = i;
      EXPECT_EQ(every, expected) << "layer " << l << " head " << h;
      // Segments start on the least-filled rank and decode pages go to it: no shard holds more
      // than three pages over another.
      EXPECT_LE(most - least, static_cast<size_t>(3 * kPage)) << "layer " << l << " head " << h;
    }
}

TEST_F(SequenceParallel, ALongPromptInChunksThatEndMidPageStaysLevel) {
  Communicator& comm = Communicator::world();
  KVShard shard(model_->shard_config(KVSpec::parse("bf16"), kPage, SIZE_MAX), nullptr);
  DistributedSequence sequence(*model_, shard, &comm);
  std::vector<float> logits;
  // Chunks of 25 tokens per rank: segments of 25 P tokens, never a whole number of pages.
  sequence.prefill(random_tokens(40 * kPage + 7, model_->config().vocab_size, 5), 25, logits, false);
  const long long mine = static_cast<long long>(shard.tokens(0, 0));
  const auto all = comm.all_gather_bytes({reinterpret_cast<const uint8_t*>(&mine), sizeof mine}, "test: gather shard sizes");
  long long most = 0, least = LLONG_MAX;
  for (const auto& theirs : all) {
    long long n = 0;
    std::memcpy(&n, theirs.data(), sizeof n);
    most = std::max(most, n), least = std::min(least, n);
  }
  EXPECT_LE(most - least, 3LL * kPage) << "shards hold " << least << " to " << most << " tokens";
}

}  // namespace
}  // namespace ringkv
