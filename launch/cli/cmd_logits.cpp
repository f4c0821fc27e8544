// ringkv logits: the logits of a token sequence, for comparing RingKV with other implementations.
#include <fstream>
#include <iostream>

#include "comm/communicator.hpp"
#include "kernels/error.hpp"
#include "launch/cli/commands.hpp"
#include "launch/cli/model_options.hpp"
#include "launch/cli/sequence_run.hpp"

namespace ringkv::cli {

int run_logits(const std::vector<std::string>& args) {
  ModelOptions m;
  std::string ids_path, out_path, spec_text = "bf16";
  int decode_from = -1;
  CLI::App app{"Write the logits of every position of a token sequence as float32 [tokens][vocab]", "ringkv logits"};
  m.add_to(app, true);
  m.add_device_to(app);
  app.add_option("--token-ids", ids_path, "file of whitespace-separated token ids")->required();
  app.add_option("--kv", spec_text, "KV codec spec")->capture_default_str();
  app.add_option("--decode-from", decode_from,
                 "prefill this many tokens in chunks, then run the rest one token at a time (default: all prefill)");
  app.add_option("-o,--output", out_path, "file to write")->required();
  if (!parse_options(app, args)) return 0;

  const auto weights = m.load_weights();
  std::vector<int32_t> tokens;
  if (Communicator::world().rank() == 0) tokens = read_token_ids(ids_path);
  share_tokens(tokens);
  RINGKV_REQUIRE(!tokens.empty(), ids_path + " holds no token ids");
  const size_t prefill = decode_from < 0 ? tokens.size() : std::min<size_t>(std::max(decode_from, 1), tokens.size());
  SequenceRun run(m, *weights, KVSpec::parse(spec_text), tokens.size());
  std::vector<float> all, step;
  run.sequence().prefill(std::span(tokens).first(prefill), m.chunk, all, true);
  for (size_t t = prefill; t < tokens.size(); ++t) {
    run.sequence().decode(tokens[t], step);
    all.insert(all.end(), step.begin(), step.end());
  }
  if (!run.prints()) return 0;  // every rank holds the same logits
  std::ofstream out(out_path, std::ios::binary);
  out.write(reinterpret_cast<const char*>(all.data()), static_cast<std::streamsize>(all.size() * sizeof(float)));
  RINGKV_REQUIRE(out.good(), "cannot write " + out_path);
  std::cout << "wrote " << out_path << ": " << tokens.size() << " x " << weights->config().vocab_size << " logits\n";
  return 0;
}

}  // namespace ringkv::cli
