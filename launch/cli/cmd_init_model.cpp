// ringkv init-model: a small LLaMA-shaped model with random weights and a byte-level tokenizer,
// for trying RingKV (and measuring speed) where no trained model is at hand.
#include <iostream>
#include <nlohmann/json.hpp>

#include "comm/communicator.hpp"
#include "kvstore/binary_io.hpp"
#include "launch/cli/commands.hpp"
#include "launch/cli/options.hpp"
#include "runtime/random_model.hpp"
#include "runtime/tokenizer.hpp"

namespace ringkv::cli {

namespace {
// Byte-level BPE without merges: one token per byte, then BOS and EOS.
std::string byte_tokenizer_json() {
  nlohmann::json vocab = nlohmann::json::object();
  for (int b = 0; b < 256; ++b) vocab[byte_level_chars()[b]] = b;
  vocab["<s>"] = 256;
  vocab["</s>"] = 257;
  const nlohmann::json j = {
      {"version", "1.0"},
      {"added_tokens",
       {{{"id", 256}, {"content", "<s>"}, {"special", true}}, {{"id", 257}, {"content", "</s>"}, {"special", true}}}},
      {"normalizer", nullptr},
      {"pre_tokenizer", {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"use_regex", true}}},
      {"decoder", {{"type", "ByteLevel"}}},
      {"model", {{"type", "BPE"}, {"vocab", vocab}, {"merges", nlohmann::json::array()}}}};
  return j.dump(1) + "\n";
}
}  // namespace

int run_init_model(const std::vector<std::string>& args) {
  std::string out;
  ModelConfig c;
  c.hidden_size = 256, c.intermediate_size = 768, c.layers = 4, c.heads = 4, c.kv_heads = 2, c.head_dim = 64;
  c.vocab_size = 258, c.max_position_embeddings = 1 << 20, c.rope_theta = 500000, c.bos_token_id = 256, c.eos_token_id = 257;
  uint64_t seed = 1;
  CLI::App app{"Write a small LLaMA-shaped model with random weights and a byte-level tokenizer", "ringkv init-model"};
  app.add_option("-o,--output", out, "model folder to write")->required();
  app.add_option("--hidden", c.hidden_size, "hidden size")->capture_default_str();
  app.add_option("--intermediate", c.intermediate_size, "SwiGLU size")->capture_default_str();
  app.add_option("--layers", c.layers, "layers")->capture_default_str();
  app.add_option("--heads", c.heads, "query heads")->capture_default_str();
  app.add_option("--kv-heads", c.kv_heads, "KV heads")->capture_default_str();
  app.add_option("--head-dim", c.head_dim, "head_dim")->capture_default_str();
  app.add_option("--seed", seed, "weight seed")->capture_default_str();
  if (!parse_options(app, args)) return 0;
  if (Communicator::world().rank() != 0) return 0;
  write_random_model(out, c, DType::BF16, seed);
  const std::string tokenizer = byte_tokenizer_json();
  write_file_atomically(out + "/tokenizer.json", std::vector<uint8_t>(tokenizer.begin(), tokenizer.end()));
  std::cout << "wrote " << out << ": random weights, " << c.layers << " layers, hidden " << c.hidden_size << ", "
            << c.heads << " query heads and " << c.kv_heads << " KV heads of " << c.head_dim
            << ", byte-level tokenizer\n";
  return 0;
}

}  // namespace ringkv::cli
