#pragma once
// Options and loading shared by the commands that run a model (generate, perplexity, calibrate,
// logits): the model, its tokenizer, the KV codec settings and the calibration file.
#include <memory>
#include <string>
#include <vector>

#include "kvstore/calibration.hpp"
#include "launch/cli/options.hpp"
#include "runtime/model_weights.hpp"
#include "runtime/tokenizer.hpp"

namespace ringkv::cli {

struct ModelOptions {
  std::string model, tokenizer, calibration;
  int page_size = 128;
  int chunk = 512;
  double kv_memory_gb = 0;  // 0: 80% of this machine's memory
  std::string device = "cpu";
  bool decode_graphs = true;

  void add_to(CLI::App& app, bool with_calibration);
  // --device (and --no-decode-graphs), for the commands that run one sequence (generate, logits, qa).
  void add_device_to(CLI::App& app);
  std::unique_ptr<ModelWeights> load_weights() const;
  // The model folder's tokenizer, or --tokenizer (needed for llama2.c checkpoints).
  std::unique_ptr<Tokenizer> load_tokenizer(const ModelConfig& config) const;
  // The calibration file, or null; refuses specs that need tables when there is none.
  std::unique_ptr<Calibration> load_calibration(const std::vector<KVSpec>& specs) const;
  size_t kv_memory_bytes() const;
};

std::vector<KVSpec> parse_specs(const std::vector<std::string>& texts);
std::vector<int32_t> read_token_ids(const std::string& path);  // whitespace-separated ids
std::string read_text_file(const std::string& path);

}  // namespace ringkv::cli
