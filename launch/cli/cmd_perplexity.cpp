// ringkv perplexity: perplexity of a text and KL divergence from bf16 under each KV codec.
#include <fstream>
#include <iostream>

#include "comm/communicator.hpp"
#include "kernels/error.hpp"
#include "launch/cli/commands.hpp"
#include "launch/cli/model_options.hpp"
#include "runtime/gpu/gpu_backend.hpp"
#include "runtime/perplexity.hpp"

namespace ringkv::cli {

int run_perplexity(const std::vector<std::string>& args) {
  ModelOptions m;
  std::string text_path, csv_path;
  std::vector<std::string> spec_texts;
  PerplexityOptions o;
  CLI::App app{"Perplexity of a text with the model attending over each KV codec's cache", "ringkv perplexity"};
  m.add_to(app, true);
  app.add_option("--text", text_path, "text file to evaluate")->required();
  app.add_option("--kv", spec_texts, "codec spec, repeatable")->required();
  app.add_option("--window", o.window, "tokens per evaluation window (each starts a fresh cache)")->capture_default_str();
  app.add_option("--max-windows", o.max_windows, "evaluate at most this many windows (0: all)")->capture_default_str();
  app.add_option("--projected-tokens", o.projected_tokens, "context length of the projected bits per element")
      ->capture_default_str();
  app.add_option("--csv", csv_path, "also write the table as CSV");
  add_device_option(app, m.device,
                    "cpu: on the CPU cores; gpu: on the GPU of each rank (the weights uploaded once, every --kv codec, "
                    "pages of 128 tokens). Either way the windows are split over the job's ranks");
  if (!parse_options(app, args)) return 0;
  o.chunk = m.chunk, o.page_size = m.page_size;
  Communicator& comm = Communicator::world();

  const std::vector<KVSpec> specs = parse_specs(spec_texts);
  const auto calibration = m.load_calibration(specs);
  const auto weights = m.load_weights();
  const auto tokenizer = m.load_tokenizer(weights->config());
  const std::vector<int32_t> tokens = tokenizer->encode(read_text_file(text_path));
  std::unique_ptr<Transformer> cpu_model;
  std::unique_ptr<WindowEvaluator> evaluator;
  if (m.device == "gpu") {
    evaluator = make_gpu_window_evaluator(*weights, calibration.get(), o, comm);
  } else {
    cpu_model = std::make_unique<Transformer>(*weights, o.window);
    evaluator = make_cpu_window_evaluator(*cpu_model, calibration.get(), o);
  }
  const std::vector<CodecQuality> rows = evaluate_perplexity(*evaluator, weights->config(), tokens, specs, o, comm);
  if (comm.rank() == 0) {
    const size_t windows = rows.empty() ? 0 : rows[0].predictions / (o.window - 1);
    std::cout << "Perplexity of " << text_path << " (" << tokens.size() << " tokens; " << windows << " windows of "
              << o.window << ") under " << m.model << ", " << comm.size() << " rank(s)" << (m.device == "gpu" ? " on GPUs" : "")
              << "; KL against a bf16 cache\n\n"
              << format_perplexity_table(rows, o.projected_tokens);
    if (!csv_path.empty()) {
      std::ofstream csv(csv_path);
      RINGKV_REQUIRE(csv.good(), "cannot write " + csv_path);
      csv << format_perplexity_csv(rows);
    }
  }
  return 0;
}

}  // namespace ringkv::cli
