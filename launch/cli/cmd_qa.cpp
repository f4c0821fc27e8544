// ringkv qa: read a document into the compressed KV cache once, then answer questions about it.
// Each question is appended as "\n\nQuestion: ...\nAnswer:" after the document (and the earlier
// answers), and the answer is generated up to the end of its line.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <iostream>

#include "comm/communicator.hpp"
#include "kernels/error.hpp"
#include "launch/cli/commands.hpp"
#include "launch/cli/model_options.hpp"
#include "launch/cli/sequence_run.hpp"
#include "kvstore/binary_io.hpp"
#include "runtime/distributed_sequence.hpp"
#include "runtime/sampler.hpp"

namespace ringkv::cli {

namespace {
double seconds_since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

std::vector<std::string> read_lines(const std::string& path) {
  std::vector<std::string> lines;
  std::string text = read_text_file(path), line;
  for (char ch : text + "\n")
    if (ch != '\n')
      line += ch;
    else if (!line.empty())
      lines.push_back(std::move(line)), line.clear();
  return lines;
}
}  // namespace

int run_qa(const std::vector<std::string>& args) {
  ModelOptions m;
  std::string document_file, questions_file, save_dir, load_dir, spec_text = "bf16";
  std::vector<std::string> questions;
  int max_answer = 128;
  bool multi_line = false;
  SamplingOptions sampling;
  CLI::App app{"Read a document into the compressed KV cache once, then answer questions about it", "ringkv qa"};
  m.add_to(app, true);
  m.add_device_to(app);
  app.add_option("--document", document_file, "the document (text file of any length)");
  app.add_option("--save-kv", save_dir, "save the document's KV cache (every rank's shard) into this folder");
  app.add_option("--load-kv", load_dir,
                 "read the document's KV cache saved by --save-kv (same ranks, page size, codec, calibration) "
                 "instead of reading the document; --document, if given, must be the one saved");
  app.add_option("--question", questions, "a question (repeat for several; answered in order)");
  app.add_option("--questions-file", questions_file, "one question per line");
  app.add_option("--kv", spec_text, "KV codec spec (KEYSPEC|VALUESPEC for different roles)")->capture_default_str();
  app.add_option("--max-answer-tokens", max_answer, "longest answer, tokens")->capture_default_str();
  app.add_flag("--multi-line", multi_line, "let answers run past the end of a line (until EOS or the limit)");
  app.add_option("--temperature", sampling.temperature, "0: greedy")->capture_default_str();
  app.add_option("--top-p", sampling.top_p, "nucleus sampling mass")->capture_default_str();
  app.add_option("--seed", sampling.seed, "sampling seed")->capture_default_str();
  if (!parse_options(app, args)) return 0;
  if (!questions_file.empty()) {
    const std::vector<std::string> more = read_lines(questions_file);
    questions.insert(questions.end(), more.begin(), more.end());
  }
  RINGKV_REQUIRE(!questions.empty(), "ringkv qa: give at least one --question or a --questions-file");
  RINGKV_REQUIRE(max_answer > 0, "--max-answer-tokens must be positive");
  RINGKV_REQUIRE(!document_file.empty() || !load_dir.empty(), "ringkv qa: give --document, or --load-kv");

  const auto weights = m.load_weights();
  const auto tokenizer = m.load_tokenizer(weights->config());
  std::vector<int32_t> document;
  if (Communicator::world().rank() == 0 && !document_file.empty()) {
    if (tokenizer->bos_id() >= 0) document.push_back(tokenizer->bos_id());
    const std::vector<int32_t> text = tokenizer->encode(read_text_file(document_file));
    document.insert(document.end(), text.begin(), text.end());
  }
  share_tokens(document);
  const uint64_t fingerprint = checksum64(document.data(), document.size() * sizeof(int32_t));
  std::vector<std::vector<int32_t>> prompts;
  size_t context = load_dir.empty() ? document.size() : static_cast<size_t>(DistributedSequence::saved_length(load_dir));
  for (const std::string& q : questions) {
    prompts.push_back(tokenizer->encode("\n\nQuestion: " + q + "\nAnswer:"));
    context += prompts.back().size() + static_cast<size_t>(max_answer);
  }

  SequenceRun run(m, *weights, KVSpec::parse(spec_text), context);
  auto start = std::chrono::steady_clock::now();
  std::vector<float> logits;
  if (!load_dir.empty()) {
    const uint64_t saved = run.sharded_sequence().load(load_dir);
    RINGKV_REQUIRE(document.empty() || saved == fingerprint,
                   load_dir + " holds the KV cache of another document than " + document_file);
    if (run.prints())
      std::fprintf(stderr, "document: %d tokens of KV cache loaded from %s in %.2f s on %d rank(s)\n",
                   run.sequence().length(), load_dir.c_str(), seconds_since(start), Communicator::world().size());
  } else {
    run.sequence().prefill(document, m.chunk, logits, false);
    if (run.prints())
      std::fprintf(stderr, "document: %zu tokens read in %.2f s (%.1f tokens/s) on %d rank(s)\n", document.size(),
                   seconds_since(start), static_cast<double>(document.size()) / seconds_since(start),
                   Communicator::world().size());
  }
  if (!save_dir.empty()) {
    run.sharded_sequence().save(save_dir, fingerprint);
    if (run.prints()) std::fprintf(stderr, "document's KV cache saved in %s\n", save_dir.c_str());
  }

  Sampler sampler(sampling);
  for (size_t i = 0; i < questions.size(); ++i) {
    start = std::chrono::steady_clock::now();
    run.sequence().prefill(prompts[i], m.chunk, logits, false);
    std::string answer;
    int32_t previous = prompts[i].back();
    for (int t = 0; t < max_answer; ++t) {
      const int32_t next = run.sequence().next_token(sampler, logits);
      if (next == tokenizer->eos_id()) break;
      const std::string piece = tokenizer->token_bytes(previous, next);
      run.sequence().decode(next, logits);  // the answer stays in the cache for later questions
      if (!multi_line && piece.find('\n') != std::string::npos && !answer.empty()) break;
      answer += piece;
      previous = next;
    }
    if (run.prints()) {
      answer.erase(0, std::min(answer.size(), answer.find_first_not_of(" \n")));  // the answer's leading line break
      std::cout << "Q: " << questions[i] << "\nA: " << answer << "\n" << std::flush;
      std::fprintf(stderr, "answered in %.2f s\n", seconds_since(start));
    }
  }
  const std::string storage = run.storage_report();
  if (run.prints()) std::fprintf(stderr, "%s\n", storage.c_str());
  return 0;
}

}  // namespace ringkv::cli
