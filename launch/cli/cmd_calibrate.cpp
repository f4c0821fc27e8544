// ringkv calibrate: learn the codec tables of every layer and KV head, from the model's own keys
// and values on calibration text (--model, --text) or from a KV dump (--kv-dump), and write them
// to a calibration file.
#include <algorithm>
#include <chrono>
#include <iostream>
#include <numeric>

#include "comm/communicator.hpp"
#include "kernels/error.hpp"
#include "kvstore/codec.hpp"
#include "kvstore/kv_dump.hpp"
#include "launch/analysis/codec_analysis.hpp"
#include "launch/cli/commands.hpp"
#include "launch/cli/model_options.hpp"
#include "runtime/gpu/gpu_backend.hpp"
#include "runtime/model_calibration.hpp"

namespace ringkv::cli {

namespace {
Calibration calibrate_on_dump(const std::string& dump_path, const std::vector<KVSpec>& specs, int page_size,
                              const NearestSearch* nearest) {
  const KVDump dump = read_kv_dump(dump_path);
  const RopeTable rope = RopeTable::plain(dump.head_dim, dump.rope_theta);
  std::vector<int> positions(dump.tokens);
  std::iota(positions.begin(), positions.end(), 0);
  Calibration cal;
  cal.description = "learned from " + dump_path;
  for (int l = 0; l < dump.layers; ++l)
    for (int h = 0; h < dump.kv_heads; ++h) {
      const std::vector<float> sensitivity = attention_received(dump, l, h);
      const CodecContext ctx{dump.head_dim, page_size, l, h, &cal, nearest};
      for (const KVSpec& spec : specs) {
        learn_codec_tables(spec.key, Role::Key, ctx, rope,
                           {dump.keys_at(l, h), positions.data(), sensitivity.data(), positions.size()}, cal);
        learn_codec_tables(spec.value, Role::Value, ctx, rope,
                           {dump.values_at(l, h), positions.data(), sensitivity.data(), positions.size()}, cal);
      }
    }
  return cal;
}
}  // namespace

int run_calibrate(const std::vector<std::string>& args) {
  std::string dump_path, model_dir, text_path, out, dump_out;
  std::vector<std::string> spec_texts;
  std::string device = "cpu";
  ModelOptions m;
  int max_tokens = 32768, window = 2048, dump_queries = 32;
  CLI::App app{"Learn codec tables (NUQ levels, CQ centroids, RVQ codebooks) from a model run or a KV dump",
               "ringkv calibrate"};
  app.add_option("--model", m.model, "model to run over --text (Hugging Face folder or llama2.c checkpoint)");
  app.add_option("--tokenizer", m.tokenizer, "tokenizer file (default: the model folder's)");
  app.add_option("--text", text_path, "calibration text for --model");
  app.add_option("--tokens", max_tokens, "use at most this many tokens of --text")->capture_default_str();
  app.add_option("--window", window, "tokens per model run (each from position 0)")->capture_default_str();
  app.add_option("--chunk", m.chunk, "prefill chunk, tokens")->capture_default_str();
  app.add_option("--dump-kv", dump_out, "also write the first window's keys, values and queries as a KV dump");
  app.add_option("--kv-dump", dump_path, "learn from this KV dump instead of a model run");
  app.add_option("--kv", spec_texts, "codec spec to learn tables for, repeatable")->required();
  app.add_option("--page-size", m.page_size, "tokens per sealed page (KVQuant normalizes per page)")->capture_default_str();
  app.add_option("-o,--output", out, "calibration file to write")->required();
  add_device_option(app, device,
                    "where k-means searches for nearest centroids: cpu, or gpu (this process's GPU; the model run "
                    "that collects keys and values stays on the CPU)");
  if (!parse_options(app, args)) return 0;
  RINGKV_REQUIRE(dump_path.empty() != m.model.empty(), "ringkv calibrate: give either --model (with --text) or --kv-dump");
  RINGKV_REQUIRE(m.model.empty() || !text_path.empty(), "ringkv calibrate: --model needs --text");
  if (Communicator::world().rank() != 0) return 0;

  const auto start = std::chrono::steady_clock::now();
  const std::vector<KVSpec> specs = parse_specs(spec_texts);
  const std::unique_ptr<NearestSearch> gpu_search = device == "gpu" ? make_gpu_nearest_search() : nullptr;
  Calibration cal;
  std::string what;
  if (!dump_path.empty()) {
    cal = calibrate_on_dump(dump_path, specs, m.page_size, gpu_search.get());
    what = "KV dump " + dump_path;
  } else {
    const auto weights = m.load_weights();
    std::vector<int32_t> tokens = m.load_tokenizer(weights->config())->encode(read_text_file(text_path));
    if (tokens.size() > static_cast<size_t>(max_tokens)) tokens.resize(max_tokens);
    const Transformer model(*weights, window);
    const CollectedKV kv = collect_kv(model, tokens, window, m.chunk, dump_queries);
    const double collect_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    if (!dump_out.empty()) {
      write_kv_dump(dump_out, kv.first_window);
      std::cout << "wrote " << dump_out << ": " << kv.first_window.tokens << " tokens, " << kv.first_window.n_queries
                << " queries per KV head\n";
    }
    const auto learn_start = std::chrono::steady_clock::now();
    cal = learn_calibration(kv, specs, m.page_size, model.rope().table, gpu_search.get());
    what = std::to_string(tokens.size()) + " tokens of " + text_path + " through " + m.model;
    std::cout << "collected keys and values of " << tokens.size() << " tokens in " << collect_s << " s; learned the tables in "
              << std::chrono::duration<double>(std::chrono::steady_clock::now() - learn_start).count() << " s (k-means on the "
              << device << ")\n";
  }
  cal.description = "learned from " + what;
  cal.save(out);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::cout << "wrote " << out << ": " << cal.tables().size() << " tables for " << specs.size() << " spec(s), learned from "
            << what << ", in " << seconds << " s\n";
  return 0;
}

}  // namespace ringkv::cli
