// ringkv: the RingKV command line.
#include <cstdio>
#include <iostream>
#include <string>
#include <vector>

#include "comm/communicator.hpp"
#include "kernels/error.hpp"
#include "launch/cli/commands.hpp"

namespace {
const char* kUsage = R"(ringkv: long-context LLM inference over a compressed, sequence-parallel KV cache

usage: [mpirun -np P] ringkv COMMAND [options]

qa, generate and logits spread the KV cache over the P ranks (sequence parallelism);
perplexity and calibrate split their windows over them.

commands:
  qa          read a document into the compressed KV cache, then answer questions about it
  generate    prefill a prompt into the compressed KV cache and stream a continuation
  perplexity  perplexity and KL divergence of a text under each KV codec
  logits      logits of every position of a token sequence (for comparisons)
  tokenize    token ids of a text
  init-model  write a small model with random weights and a byte tokenizer
  analyze     bits per element, reconstruction and attention error of KV codecs on a KV dump
  calibrate   learn codec tables (NUQ levels, CQ centroids, RVQ codebooks) from a model run or a KV dump
  synth-kv    write a synthetic KV dump with the structure of real keys and values

`ringkv COMMAND --help` lists a command's options.
)";
}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  if (args.empty() || args[0] == "--help" || args[0] == "-h" || args[0] == "help") {
    std::fputs(kUsage, stdout);
    return args.empty() ? 2 : 0;
  }
  const std::string command = args[0];
  args.erase(args.begin());
  try {
    if (command == "analyze") return ringkv::cli::run_analyze(args);
    if (command == "calibrate") return ringkv::cli::run_calibrate(args);
    if (command == "synth-kv") return ringkv::cli::run_synth_kv(args);
    if (command == "qa") return ringkv::cli::run_qa(args);
    if (command == "generate") return ringkv::cli::run_generate(args);
    if (command == "perplexity") return ringkv::cli::run_perplexity(args);
    if (command == "logits") return ringkv::cli::run_logits(args);
    if (command == "init-model") return ringkv::cli::run_init_model(args);
    if (command == "tokenize") return ringkv::cli::run_tokenize(args);
    std::fprintf(stderr, "ringkv: unknown command '%s'\n\n%s", command.c_str(), kUsage);
    return 2;
  } catch (const std::exception& e) {
    // One failing rank takes the job down rather than leaving the others waiting in a collective.
    return ringkv::abort_all(e.what());
  }
}
