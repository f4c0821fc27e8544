#include "launch/cli/model_options.hpp"

#include <filesystem>
#include <fstream>
#include <sstream>
#include <unistd.h>

#include "comm/communicator.hpp"
#include "kernels/error.hpp"
#include "kvstore/codec.hpp"

namespace ringkv::cli {

void ModelOptions::add_to(CLI::App& app, bool with_calibration) {
  app.add_option("--model", model, "Hugging Face model folder, or a llama2.c .bin checkpoint")->required();
  app.add_option("--tokenizer", tokenizer,
                 "tokenizer file (default: tokenizer.json or tokenizer.model in the model folder)");
  if (with_calibration)
    app.add_option("--calibration", calibration, "codec tables from `ringkv calibrate` (needed by kvquant, cq, rvq)");
  app.add_option("--page-size", page_size, "tokens per sealed KV page")->capture_default_str();
  app.add_option("--chunk", chunk, "prefill chunk, tokens")->capture_default_str();
  app.add_option("--kv-memory-gb", kv_memory_gb,
                 "KV cache memory of each rank in GiB (default: 80% of this machine's memory, shared by its ranks)");
}

void ModelOptions::add_device_to(CLI::App& app) {
  add_device_option(app, device,
                    "cpu: the CPU backend, the cache spread over the job's ranks; gpu: weights and the KV cache on "
                    "the GPU of each rank (pages of 128 tokens; every --kv codec on one rank, bf16 on several)");
  app.add_flag("!--no-decode-graphs", decode_graphs,
               "on one GPU, run each decode step as plain kernel launches instead of replaying it as a CUDA graph");
}

std::unique_ptr<ModelWeights> ModelOptions::load_weights() const { return ModelWeights::load(model); }

std::unique_ptr<Tokenizer> ModelOptions::load_tokenizer(const ModelConfig& config) const {
  const std::string path = !tokenizer.empty() ? tokenizer
                           : std::filesystem::is_directory(model) ? model
                                                                  : "";
  RINGKV_REQUIRE(!path.empty(), "model " + model + " is a checkpoint file: give its tokenizer with --tokenizer");
  return ringkv::load_tokenizer(path, config.vocab_size);
}

std::unique_ptr<Calibration> ModelOptions::load_calibration(const std::vector<KVSpec>& specs) const {
  if (!calibration.empty()) return std::make_unique<Calibration>(Calibration::load(calibration));
  for (const KVSpec& s : specs)
    RINGKV_REQUIRE(!codec_needs_calibration(s.key) && !codec_needs_calibration(s.value),
                   "codec '" + s.text() + "' needs learned tables: run `ringkv calibrate --model " + model +
                       " --text FILE --kv '" + s.text() + "' -o FILE` and pass --calibration FILE");
  return nullptr;
}

size_t ModelOptions::kv_memory_bytes() const {
  if (kv_memory_gb > 0) return static_cast<size_t>(kv_memory_gb * (1ull << 30));
  const double physical = static_cast<double>(sysconf(_SC_PHYS_PAGES)) * static_cast<double>(sysconf(_SC_PAGE_SIZE));
  return static_cast<size_t>(0.8 * physical / Communicator::world().local_size());  // the node's ranks share it
}

std::vector<KVSpec> parse_specs(const std::vector<std::string>& texts) {
  std::vector<KVSpec> specs;
  for (const std::string& t : texts) specs.push_back(KVSpec::parse(t));
  return specs;
}

std::vector<int32_t> read_token_ids(const std::string& path) {
  std::ifstream in(path);
  RINGKV_REQUIRE(in.good(), "cannot open token id file " + path);
  std::vector<int32_t> ids;
  std::string word;
  while (in >> word) {
    size_t used = 0;
    long v = -1;
    try {
      v = std::stol(word, &used);
    } catch (const std::exception&) {
    }
    RINGKV_REQUIRE(used == word.size() && v >= 0 && v <= INT32_MAX, path + ": '" + word + "' is not a token id");
    ids.push_back(static_cast<int32_t>(v));
  }
  return ids;
}

std::string read_text_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  RINGKV_REQUIRE(in.good(), "cannot open text file " + path);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

}  // namespace ringkv::cli
