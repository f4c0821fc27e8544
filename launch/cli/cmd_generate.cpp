// ringkv generate: prefill a prompt into the compressed KV cache and stream a continuation.
#include <chrono>
#include <cstdio>
#include <iostream>

#include "comm/communicator.hpp"
#include "kernels/error.hpp"
#include "launch/cli/commands.hpp"
#include "launch/cli/model_options.hpp"
#include "launch/cli/sequence_run.hpp"
#include "runtime/sampler.hpp"

namespace ringkv::cli {

namespace {
double seconds_since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
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
  m.add_device_to(app);
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

  const auto weights = m.load_weights();
  const ModelConfig& c = weights->config();
  std::unique_ptr<Tokenizer> tokenizer;
  if (prompt_ids_file.empty() || !print_ids) tokenizer = m.load_tokenizer(c);
  std::vector<int32_t> tokens;
  if (Communicator::world().rank() == 0) {
    if (!prompt_ids_file.empty()) {
      tokens = read_token_ids(prompt_ids_file);
    } else {
      if (!no_bos && tokenizer->bos_id() >= 0) tokens.push_back(tokenizer->bos_id());
      const std::vector<int32_t> text = tokenizer->encode(prompt.empty() ? read_text_file(prompt_file) : prompt);
      tokens.insert(tokens.end(), text.begin(), text.end());
    }
  }
  share_tokens(tokens);
  RINGKV_REQUIRE(!tokens.empty(), "ringkv generate: the prompt has no tokens");
  const size_t context = tokens.size() + static_cast<size_t>(max_new);
  if (context > static_cast<size_t>(c.max_position_embeddings))
    std::cerr << "warning: " << context << " tokens exceed the model's max_position_embeddings ("
              << c.max_position_embeddings << ")\n";

  SequenceRun run(m, *weights, KVSpec::parse(spec_text), context);
  auto start = std::chrono::steady_clock::now();
  std::vector<float> logits;
  run.sequence().prefill(tokens, m.chunk, logits, false);
  const double prefill_s = seconds_since(start);

  Sampler sampler(sampling);
  start = std::chrono::steady_clock::now();
  const int32_t eos = ignore_eos ? -1 : tokenizer ? tokenizer->eos_id() : c.eos_token_id;
  int generated = 0;
  int32_t previous = tokens.back();
  while (generated < max_new) {
    const int32_t next = run.sequence().next_token(sampler, logits);
    ++generated;
    if (run.prints()) {  // every rank samples the same token from the same logits; rank 0 shows it
      if (print_ids)
        std::cout << (generated > 1 ? " " : "") << next << std::flush;
      else if (next != eos)
        std::cout << tokenizer->token_bytes(previous, next) << std::flush;
    }
    if (next == eos || generated == max_new) break;
    run.sequence().decode(next, logits);
    previous = next;
  }
  const double decode_s = seconds_since(start);
  const std::string storage = run.storage_report();
  if (!run.prints()) return 0;
  std::cout << std::endl;
  std::fprintf(stderr,
               "prompt: %zu tokens, prefill %.2f s (%.1f tokens/s); generated %d tokens, %.2f s (%.2f tokens/s) on %d rank(s)\n%s\n",
               tokens.size(), prefill_s, static_cast<double>(tokens.size()) / prefill_s, generated, decode_s,
               generated / std::max(decode_s, 1e-9), Communicator::world().size(), storage.c_str());
  return 0;
}

}  // namespace ringkv::cli
