// ringkv generate: prefill a prompt into the compressed KV cache and stream a continuation.
#include <chrono>
#include <cstdio>
#include <iostream>

#include "comm/communicator.hpp"
#include "kernels/error.hpp"
#include "launch/cli/commands.hpp"
#include "launch/cli/model_options.hpp"
#include "runtime/sampler.hpp"
#include "runtime/transformer.hpp"

namespace ringkv::cli {

namespace {
double seconds_since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}
std::string gib(double bytes) {
  char b[32];
  if (bytes >= (1ull << 30))
    std::snprintf(b, sizeof b, "%.2f GiB", bytes / (1ull << 30));
  else
    std::snprintf(b, sizeof b, "%.2f MiB", bytes / (1ull << 20));
  return b;
}
}  // namespace

int run_generate(const std::vector<std::string>& args) {
  ModelOptions m;
  std::string prompt, prompt_file, prompt_ids_file, spec_text = "bf16";
  int max_new = 64;
  bool print_ids = false, no_bos = false, ignore_eos = false;
  SamplingOptions sampling;
  CLI::App app{"Prefill a prompt into the compressed KV cache and stream a continuation", "ringkv generate"};
  m.add_to(app, true);
  app.add_option("--prompt", prompt, "prompt text");
  app.add_option("--prompt-file", prompt_file, "read the prompt from this file (a document of any length)");
  app.add_option("--prompt-ids", prompt_ids_file, "file of whitespace-separated token ids to use as the prompt");
  app.add_option("--kv", spec_text, "KV codec spec (KEYSPEC|VALUESPEC for different roles)")->capture_default_str();
  app.add_option("--max-new-tokens", max_new, "tokens to generate")->capture_default_str();
  app.add_option("--temperature", sampling.temperature, "0: greedy")->capture_default_str();
  app.add_option("--top-p", sampling.top_p, "nucleus sampling mass")->capture_default_str();
  app.add_option("--seed", sampling.seed, "sampling seed")->capture_default_str();
  app.add_flag("--print-ids", print_ids, "print token ids instead of text");
  app.add_flag("--no-bos", no_bos, "do not start a text prompt with the BOS token");
  app.add_flag("--ignore-eos", ignore_eos, "keep generating after the end-of-sequence token");
  if (!parse_options(app, args)) return 0;
  RINGKV_REQUIRE((!prompt.empty()) + (!prompt_file.empty()) + (!prompt_ids_file.empty()) == 1,
                 "ringkv generate: give exactly one of --prompt, --prompt-file, --prompt-ids");
  RINGKV_REQUIRE(max_new >= 0, "--max-new-tokens must not be negative");
  if (Communicator::world().rank() != 0) return 0;  // one rank runs the model; the others have no work

  const auto weights = m.load_weights();
  const ModelConfig& c = weights->config();
  std::unique_ptr<Tokenizer> tokenizer;
  if (prompt_ids_file.empty() || !print_ids) tokenizer = m.load_tokenizer(c);
  std::vector<int32_t> tokens;
  if (!prompt_ids_file.empty()) {
    tokens = read_token_ids(prompt_ids_file);
  } else {
    if (!no_bos && tokenizer->bos_id() >= 0) tokens.push_back(tokenizer->bos_id());
    const std::vector<int32_t> text = tokenizer->encode(prompt.empty() ? read_text_file(prompt_file) : prompt);
    tokens.insert(tokens.end(), text.begin(), text.end());
  }
  RINGKV_REQUIRE(!tokens.empty(), "ringkv generate: the prompt has no tokens");
  const size_t context = tokens.size() + static_cast<size_t>(max_new);
  if (context > static_cast<size_t>(c.max_position_embeddings))
    std::cerr << "warning: " << context << " tokens exceed the model's max_position_embeddings ("
              << c.max_position_embeddings << ")\n";

  const KVSpec spec = KVSpec::parse(spec_text);
  const auto calibration = m.load_calibration({spec});
  const Transformer model(*weights, context);
  KVShard kv(model.shard_config(spec, m.page_size, m.kv_memory_bytes()), calibration.get());
  const size_t needed = kv.bytes_needed(context);
  RINGKV_REQUIRE(needed <= m.kv_memory_bytes(), "a context of " + std::to_string(context) + " tokens with KV codec '" +
                                                    spec.text() + "' needs " + gib(static_cast<double>(needed)) +
                                                    " of KV memory; the budget is " +
                                                    gib(static_cast<double>(m.kv_memory_bytes())) + " (--kv-memory-gb)");

  auto start = std::chrono::steady_clock::now();
  std::vector<float> logits;
  model.prefill(tokens, 0, m.chunk, kv, logits, false);
  const double prefill_s = seconds_since(start);

  Sampler sampler(sampling);
  start = std::chrono::steady_clock::now();
  const int32_t eos = ignore_eos ? -1 : tokenizer ? tokenizer->eos_id() : c.eos_token_id;
  int generated = 0;
  int32_t previous = tokens.back();
  while (generated < max_new) {
    const int32_t next = sampler.next(logits);
    ++generated;
    if (print_ids)
      std::cout << (generated > 1 ? " " : "") << next;
    else if (next != eos)
      std::cout << tokenizer->token_bytes(previous, next);
    std::cout.flush();
    if (next == eos || generated == max_new) break;
    model.forward({&next, 1}, static_cast<int>(tokens.size()) + generated - 1, kv, logits, false);
    previous = next;
  }
  const double decode_s = seconds_since(start);
  std::cout << std::endl;
  const StorageStats st = kv.stats();
  std::fprintf(stderr,
               "prompt: %zu tokens, prefill %.2f s (%.1f tokens/s); generated %d tokens, %.2f s (%.2f tokens/s)\n"
               "KV cache (%s): %s for %zu tokens, %.3f bits per element\n",
               tokens.size(), prefill_s, static_cast<double>(tokens.size()) / prefill_s, generated, decode_s,
               generated / std::max(decode_s, 1e-9), spec.text().c_str(), gib(static_cast<double>(st.total())).c_str(),
               st.tokens / std::max(1, c.layers * c.kv_heads), st.bits_per_element(c.head_dim));
  return 0;
}

}  // namespace ringkv::cli
