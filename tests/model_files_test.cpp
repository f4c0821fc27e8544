// Model files: Hugging Face configs and safetensors (real shards of reftiny-14m), llama2.c
// checkpoints (stories260K), and refusal of damaged files. The real models come from
// $RINGKV_MODELS or ../shared/models beside the checkout; tests that need them skip without them.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "kernels/error.hpp"
#include "kvstore/binary_io.hpp"
#include "runtime/llama2c.hpp"
#include "runtime/model_config.hpp"
#include "runtime/safetensors.hpp"
#include "test_util.hpp"

namespace ringkv {
namespace {

using test::models_dir;

TEST(ModelFiles, ReadsTheHuggingFaceConfigOfReftiny) {
  const std::string dir = models_dir() + "/reftiny-14m";
  RINGKV_REQUIRE_FILE(dir);
  const ModelConfig c = read_hf_config(dir);
  EXPECT_EQ(c.hidden_size, 256);
  EXPECT_EQ(c.layers, 8);
  EXPECT_EQ(c.heads, 2);
  EXPECT_EQ(c.kv_heads, 1);
  EXPECT_EQ(c.head_dim, 128);
  EXPECT_EQ(c.intermediate_size, 768);
  EXPECT_EQ(c.vocab_size, 32000);
  EXPECT_TRUE(c.tie_word_embeddings);
  EXPECT_EQ(c.rope_theta, 10000.0);
  EXPECT_EQ(c.rope_scaling.type, "default");
}

TEST(ModelFiles, MapsShardedSafetensors) {
  const std::string dir = models_dir() + "/reftiny-14m";
  RINGKV_REQUIRE_FILE(dir);
  const WeightStore w(dir);
  EXPECT_EQ(w.tensor_count(), 8u * 9 + 2);  // 9 per layer, embeddings, final norm (tied head)
  const TensorView& embed = w.get("model.embed_tokens.weight");
  EXPECT_EQ(embed.dtype, DType::BF16);
  const std::vector<float> norm = w.get("model.norm.weight").to_float({256});
  for (float x : norm) ASSERT_TRUE(std::isfinite(x));
  EXPECT_THROW(w.get("model.layers.8.mlp.up_proj.weight"), Error);
  EXPECT_THROW(w.get("model.norm.weight").to_float({255}), Error);
}

TEST(ModelFiles, ReadsLlama2cCheckpoints) {
  const std::string path = models_dir() + "/stories260K/stories260K.bin";
  RINGKV_REQUIRE_FILE(path);
  const Llama2cCheckpoint ckpt(path);
  const ModelConfig& c = ckpt.config();
  EXPECT_EQ(c.hidden_size, 64);
  EXPECT_EQ(c.intermediate_size, 172);
  EXPECT_EQ(c.layers, 5);
  EXPECT_EQ(c.heads, 8);
  EXPECT_EQ(c.kv_heads, 4);
  EXPECT_EQ(c.vocab_size, 512);
  EXPECT_EQ(c.head_dim, 8);
  EXPECT_EQ(ckpt.tensors().at("model.layers.4.self_attn.k_proj.weight").shape, (std::vector<int64_t>{32, 64}));
  EXPECT_EQ(ckpt.tensors().count("lm_head.weight"), c.tie_word_embeddings ? 0u : 1u);
}

class DamagedModelFiles : public ::testing::Test {
 protected:
  std::string dir = ::testing::TempDir() + "/ringkv_" + ::testing::UnitTest::GetInstance()->current_test_info()->name();
  void SetUp() override { std::filesystem::create_directories(dir); }
  void TearDown() override { std::filesystem::remove_all(dir); }

  void write(const std::string& name, const std::string& bytes) {
    std::ofstream(dir + "/" + name, std::ios::binary) << bytes;
  }
  // A safetensors file with one F32 tensor of `shape` whose header claims [begin, end).
  static std::string safetensors(const std::string& shape, size_t begin, size_t end, size_t data_bytes) {
    const std::string header = R"({"w":{"dtype":"F32","shape":)" + shape + R"(,"data_offsets":[)" +
                               std::to_string(begin) + "," + std::to_string(end) + "]}}";
    std::string out(8, '\0');
    const uint64_t n = header.size();
    std::memcpy(out.data(), &n, 8);
    return out + header + std::string(data_bytes, '\1');
  }
  template <class F>
  static void expect_error(F f, const std::string& words) {
    try {
      f();
      FAIL() << "accepted a damaged file (expected: " << words << ")";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(words), std::string::npos) << e.what();
    }
  }
};

TEST_F(DamagedModelFiles, SafetensorsAreChecked) {
  write("model.safetensors", safetensors("[2,3]", 0, 24, 24));
  EXPECT_EQ(WeightStore(dir).get("w").to_float({2, 3}).size(), 6u);
  const std::string path = dir + "/model.safetensors";
  write("model.safetensors", safetensors("[2,3]", 0, 24, 10));
  expect_error([&] { SafetensorsFile f(path); }, "outside the file");
  write("model.safetensors", safetensors("[2,4]", 0, 24, 24));
  expect_error([&] { SafetensorsFile f(path); }, "do not match its byte range");
  write("model.safetensors", std::string("\xff\xff\xff\x7f\0\0\0\0{}", 10));
  expect_error([&] { SafetensorsFile f(path); }, "truncated");
  write("model.safetensors", safetensors("[2,3]", 0, 24, 24).replace(9, 3, "xyz"));
  expect_error([&] { SafetensorsFile f(path); }, "corrupt");
  write("model.safetensors", "abc");
  expect_error([&] { SafetensorsFile f(path); }, "truncated");
  std::filesystem::remove(path);
  expect_error([&] { WeightStore w(dir); }, "neither model.safetensors");
}

TEST_F(DamagedModelFiles, ConfigsAreChecked) {
  write("config.json", R"({"hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2,
      "num_attention_heads": 4, "num_key_value_heads": 3, "vocab_size": 100})");
  expect_error([&] { read_hf_config(dir); }, "not a multiple");
  write("config.json", R"({"hidden_size": 64, "num_hidden_layers": 2})");
  expect_error([&] { read_hf_config(dir); }, "intermediate_size");
  write("config.json", R"({"hidden_size": "wide"})");
  expect_error([&] { read_hf_config(dir); }, "wrong type");
  write("config.json", "{not json");
  expect_error([&] { read_hf_config(dir); }, "not valid JSON");
  write("config.json", R"({"hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2,
      "num_attention_heads": 4, "vocab_size": 100, "rope_scaling": {"rope_type": "llama3", "factor": 8.0,
      "original_max_position_embeddings": 8192}, "rope_theta": 500000})");
  const ModelConfig c = read_hf_config(dir);
  EXPECT_EQ(c.rope_scaling.type, "llama3");
  EXPECT_EQ(c.rope_scaling.factor, 8.0);
  EXPECT_EQ(c.rope_theta, 500000.0);
  EXPECT_EQ(c.kv_heads, 4);
  EXPECT_EQ(c.head_dim, 16);
}

TEST_F(DamagedModelFiles, Llama2cSizesAreChecked) {
  const std::string path = dir + "/model.bin";
  const int32_t header[7] = {16, 32, 1, 2, 2, 10, 8};
  std::string bytes(reinterpret_cast<const char*>(header), sizeof header);
  write("model.bin", bytes + std::string(100, '\0'));
  expect_error([&] { Llama2cCheckpoint c(path); }, "its header describes");
  write("model.bin", "tiny");
  expect_error([&] { Llama2cCheckpoint c(path); }, "truncated");
}

}  // namespace
}  // namespace ringkv
