// The real models (../shared/models or $RINGKV_MODELS) continue text exactly as Hugging Face
// transformers does: the expected ids below are transformers' greedy continuations (fp32), as
// scripts/compare_transformers.py prints them on a machine with torch.
#include <gtest/gtest.h>

#include "runtime/tokenizer.hpp"
#include "runtime/transformer.hpp"
#include "test_util.hpp"

namespace ringkv {
namespace {

std::vector<int32_t> greedy(const std::string& model_path, std::vector<int32_t> prompt, int n, const std::string& spec) {
  const auto weights = ModelWeights::load(model_path);
  const Transformer model(*weights, prompt.size() + n);
  KVShard kv(model.shard_config(KVSpec::parse(spec), 16, SIZE_MAX), nullptr);
  std::vector<float> logits;
  model.prefill(prompt, 0, 7, kv, logits, false);
  std::vector<int32_t> out;
  for (int i = 0; i < n; ++i) {
    const int32_t next = static_cast<int32_t>(std::max_element(logits.begin(), logits.end()) - logits.begin());
    out.push_back(next);
    model.forward({&next, 1}, static_cast<int>(prompt.size()) + i, kv, logits, false);
  }
  return out;
}

TEST(ModelRuntime, ReftinyContinuesAsTransformersDoes) {
  const std::string dir = test::models_dir() + "/reftiny-14m";
  RINGKV_REQUIRE_FILE(dir + "/config.json");
  std::vector<int32_t> prompt = {1};
  const std::vector<int32_t> text = load_tokenizer(dir)->encode(
      "In the beginning God created the heaven and the earth. And the earth was without form, and void; and darkness "
      "was upon the face of the deep.");
  prompt.insert(prompt.end(), text.begin(), text.end());
  const std::vector<int32_t> expected = {13,   259,  29896, 29906, 1126, 278,  8437,  471,  2989, 310,  278,   8437,
                                         29892, 322, 278,   8437,  471,  2989, 310,   278,  8437, 29892, 13,   392,
                                         278,  8437, 471,   2989,  310,  278,  8437,  29892, 322, 278,  8437,  471,
                                         2989, 310,  278,   8437,  29889, 13,  259,   29896, 29941, 1126, 278, 8437};
  EXPECT_EQ(greedy(dir, prompt, 48, "fp32"), expected);
}

TEST(ModelRuntime, Stories260KContinuesAsTransformersDoes) {
  const std::string path = test::models_dir() + "/stories260K/stories260K.bin";
  RINGKV_REQUIRE_FILE(path);
  const std::vector<int32_t> expected = {
      461, 461, 401, 401, 401, 461, 378, 455, 473, 456, 435, 299, 362, 409, 283, 264, 283, 452, 288, 13,
      431, 431, 431, 431, 431, 431, 431, 431, 431, 431, 431, 431, 431, 293, 430, 417, 363, 416, 315, 342,
      418, 424, 400, 442, 402, 303, 266, 299, 374, 466, 396, 303, 271, 362, 390, 469, 306, 469, 423, 314,
      347, 305, 356, 333, 333, 333, 333, 425, 377, 354, 304, 304, 304, 304, 304, 330, 341, 382, 468, 473,
      473, 402, 402, 299, 299, 483, 456, 473, 456, 473, 465, 465, 465, 341, 317, 436, 363, 454, 315, 377};
  EXPECT_EQ(greedy(path, {1}, 100, "fp32"), expected);
}

}  // namespace
}  // namespace ringkv
