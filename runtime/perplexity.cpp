#include "runtime/perplexity.hpp"

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <sstream>

#include "kernels/error.hpp"

namespace ringkv {

namespace {
// Rows of logits -> log-probabilities, in place.
void log_softmax_rows(std::vector<float>& logits, size_t vocab) {
  const size_t rows = logits.size() / vocab;
#pragma omp parallel for schedule(static)
  for (size_t r = 0; r < rows; ++r) {
    float* x = logits.data() + r * vocab;
    float top = x[0];
    for (size_t i = 1; i < vocab; ++i) top = std::max(top, x[i]);
    double sum = 0;
    for (size_t i = 0; i < vocab; ++i) sum += std::exp(static_cast<double>(x[i] - top));
    const float shift = top + static_cast<float>(std::log(sum));
    for (size_t i = 0; i < vocab; ++i) x[i] -= shift;
  }
}

class CpuWindowEvaluator final : public WindowEvaluator {
 public:
  CpuWindowEvaluator(const Transformer& model, const Calibration* calibration, const PerplexityOptions& o)
      : model_(model), calibration_(calibration), chunk_(o.chunk), page_size_(o.page_size) {}
  StorageStats run(std::span<const int32_t> window, const KVSpec& spec, std::vector<float>& logits) override {
    KVShard kv(model_.shard_config(spec, page_size_, SIZE_MAX), calibration_);
    model_.prefill(window, 0, chunk_, kv, logits, true);
    return kv.stats();
  }

 private:
  const Transformer& model_;
  const Calibration* calibration_;
  int chunk_, page_size_;
};

// What one rank sends for one codec: sums over its windows.
struct QualitySums {
  double nll = 0, kl = 0, reference_nll = 0, predictions = 0, seconds = 0, stored_bytes = 0, stored_elements = 0,
         projected_bytes = 0;
};
}  // namespace

double CodecQuality::perplexity() const { return predictions ? std::exp(nll_sum / predictions) : 0; }
double CodecQuality::reference_perplexity() const { return predictions ? std::exp(reference_nll_sum / predictions) : 0; }

std::unique_ptr<WindowEvaluator> make_cpu_window_evaluator(const Transformer& model, const Calibration* calibration,
                                                           const PerplexityOptions& options) {
  return std::make_unique<CpuWindowEvaluator>(model, calibration, options);
}

std::vector<CodecQuality> evaluate_perplexity(WindowEvaluator& evaluator, const ModelConfig& c, std::span<const int32_t> tokens,
                                              std::span<const KVSpec> specs, const PerplexityOptions& o, Communicator& comm) {
  RINGKV_REQUIRE(o.window >= 2, "perplexity windows need at least 2 tokens");
  size_t windows = tokens.size() / o.window;
  if (o.max_windows > 0) windows = std::min(windows, static_cast<size_t>(o.max_windows));
  RINGKV_REQUIRE(windows > 0, "the text has " + std::to_string(tokens.size()) + " tokens, fewer than one window of " +
                                  std::to_string(o.window));
  const size_t vocab = c.vocab_size, streams = static_cast<size_t>(c.layers) * c.kv_heads;
  std::vector<QualitySums> sums(specs.size());
  std::vector<float> reference, logits;
  for (size_t w = comm.rank(); w < windows; w += comm.size()) {
    const std::span<const int32_t> window = tokens.subspan(w * o.window, o.window);
    // The bf16 cache's distributions: the reference of the KL divergences and of the deltas.
    const auto reference_start = std::chrono::steady_clock::now();
    const StorageStats reference_storage = evaluator.run(window, KVSpec::parse("bf16"), reference);
    log_softmax_rows(reference, vocab);
    const double reference_seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - reference_start).count();
    double reference_nll = 0;
    for (int t = 0; t + 1 < o.window; ++t) reference_nll -= reference[t * vocab + window[t + 1]];
    for (size_t s = 0; s < specs.size(); ++s) {
      const auto start = std::chrono::steady_clock::now();
      const bool is_reference = specs[s].text() == "bf16";  // already evaluated
      const StorageStats st = is_reference ? reference_storage : evaluator.run(window, specs[s], logits);
      if (!is_reference) log_softmax_rows(logits, vocab);
      const std::vector<float>& lps = is_reference ? reference : logits;
      QualitySums& q = sums[s];
      for (int t = 0; t + 1 < o.window; ++t) {
        const float* lp = lps.data() + t * vocab;
        const float* ref = reference.data() + t * vocab;
        q.nll -= lp[window[t + 1]];
        double kl = 0;
        if (!is_reference)
          for (size_t i = 0; i < vocab; ++i) kl += std::exp(static_cast<double>(ref[i])) * (ref[i] - lp[i]);
        q.kl += kl;
        q.predictions += 1;
      }
      q.reference_nll += reference_nll;
      q.stored_bytes += static_cast<double>(st.total());
      q.stored_elements += 2.0 * static_cast<double>(st.tokens) * c.head_dim;
      q.projected_bytes = st.projected_bytes_per_stream(o.projected_tokens, streams);
      q.seconds += is_reference ? reference_seconds
                                : std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    }
  }
  std::vector<uint8_t> mine(sums.size() * sizeof(QualitySums));
  std::memcpy(mine.data(), sums.data(), mine.size());
  const auto all = comm.all_gather_bytes(mine, "perplexity: gather codec results");
  std::vector<CodecQuality> out(specs.size());
  for (size_t s = 0; s < specs.size(); ++s) {
    QualitySums total;
    for (const auto& bytes : all) {
      QualitySums q;
      std::memcpy(&q, bytes.data() + s * sizeof(QualitySums), sizeof q);
      total.nll += q.nll, total.kl += q.kl, total.predictions += q.predictions, total.seconds += q.seconds;
      total.reference_nll += q.reference_nll;
      total.stored_bytes += q.stored_bytes, total.stored_elements += q.stored_elements;
      total.projected_bytes = std::max(total.projected_bytes, q.projected_bytes);  // the same on every rank
    }
    CodecQuality& r = out[s];
    r.spec = specs[s].text();
    r.nll_sum = total.nll, r.kl_sum = total.kl, r.reference_nll_sum = total.reference_nll, r.predictions = static_cast<size_t>(total.predictions);
    r.seconds = total.seconds;
    r.bits_per_element = 8.0 * total.stored_bytes / total.stored_elements;
    r.projected_bits = 8.0 * total.projected_bytes / (2.0 * o.projected_tokens * c.head_dim);
  }
  return out;
}

std::string format_perplexity_table(const std::vector<CodecQuality>& rows, double projected_tokens) {
  std::ostringstream out;
  char line[512];
  char projected[32];
  std::snprintf(projected, sizeof projected, "bits@%.0fK", projected_tokens / 1024);
  if (projected_tokens >= (1 << 20)) std::snprintf(projected, sizeof projected, "bits@%.0fM", projected_tokens / (1 << 20));
  if (!rows.empty()) out << "bf16 cache perplexity on the same windows: " << rows[0].reference_perplexity() << "\n";
  std::snprintf(line, sizeof line, "%-52s %8s %10s %11s %9s %10s %9s\n", "codec", "bits/el", projected, "perplexity",
                "delta", "KL(bf16)", "seconds");
  out << line;
  for (const CodecQuality& r : rows) {
    std::snprintf(line, sizeof line, "%-52s %8.3f %10.3f %11.4f %+9.4f %10.5f %9.1f\n", r.spec.c_str(), r.bits_per_element,
                  r.projected_bits, r.perplexity(), r.perplexity() - r.reference_perplexity(), r.mean_kl(), r.seconds);
    out << line;
  }
  return out.str();
}

std::string format_perplexity_csv(const std::vector<CodecQuality>& rows) {
  std::ostringstream out;
  out << "codec,bits_per_element,projected_bits,perplexity,bf16_perplexity,mean_kl,predictions,seconds\n";
  for (const CodecQuality& r : rows)
    out << '"' << r.spec << "\"," << r.bits_per_element << ',' << r.projected_bits << ',' << r.perplexity() << ','
        << r.reference_perplexity() << ',' << r.mean_kl() << ',' << r.predictions << ',' << r.seconds << '\n';
  return out.str();
}

}  // namespace ringkv
