#pragma once
// Perplexity of a text under KV codecs, evaluated as the KV-quantization papers do: every position
// attends over the cache in its stored (compressed) form, in windows that each start a fresh
// cache at position 0. Also the mean KL divergence of each codec's next-token distributions from
// those of a bf16 cache. Windows are split over the job's ranks; every rank gets the totals.
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "comm/communicator.hpp"
#include "runtime/transformer.hpp"

namespace ringkv {

struct PerplexityOptions {
  int window = 2048;
  int chunk = 512;
  int page_size = 128;
  int max_windows = 0;                // 0: every whole window of the text
  double projected_tokens = 1 << 20;  // context length of the projected bits per element
};

struct CodecQuality {
  std::string spec;
  double bits_per_element = 0;  // stored in the evaluated windows (bf16 tail and all codebooks included)
  double projected_bits = 0;    // at options.projected_tokens tokens per layer and head
  double nll_sum = 0, kl_sum = 0;
  double reference_nll_sum = 0;  // of the bf16 cache on the same predictions
  size_t predictions = 0;
  double seconds = 0;
  double perplexity() const;
  double reference_perplexity() const;
  double mean_kl() const { return predictions ? kl_sum / predictions : 0; }
};

// Runs the model over one window under one codec: the logits [window][vocab] of every position,
// each attending over a fresh cache of the codec as the window fills it, and what that cache took
// as stored.
class WindowEvaluator {
 public:
  virtual ~WindowEvaluator() = default;
  virtual StorageStats run(std::span<const int32_t> window, const KVSpec& spec, std::vector<float>& logits) = 0;
};

// On this process's CPU cores: the model's chunked prefill into a KVShard. calibration: the tables
// of codecs that need them (may be null when none does).
std::unique_ptr<WindowEvaluator> make_cpu_window_evaluator(const Transformer& model, const Calibration* calibration,
                                                           const PerplexityOptions& options);

std::vector<CodecQuality> evaluate_perplexity(WindowEvaluator& evaluator, const ModelConfig& config,
                                              std::span<const int32_t> tokens, std::span<const KVSpec> specs,
                                              const PerplexityOptions& options, Communicator& comm);

// The table `ringkv perplexity` prints (delta: against the bf16 cache on the same windows), and CSV.
std::string format_perplexity_table(const std::vector<CodecQuality>& rows, double projected_tokens);
std::string format_perplexity_csv(const std::vector<CodecQuality>& rows);

}  // namespace ringkv
