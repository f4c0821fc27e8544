// ringkv synth-kv: write a generated KV dump (correlated channels, outlier channels, large-norm tokens).
#include <iostream>

#include "comm/communicator.hpp"
#include "kvstore/kv_dump.hpp"
#include "kvstore/synthetic_kv.hpp"
#include "launch/cli/commands.hpp"
#include "launch/cli/options.hpp"

namespace ringkv::cli {

int run_synth_kv(const std::vector<std::string>& args) {
  std::string out;
  SyntheticKVOptions s;
  CLI::App app{"Write a generated KV dump with the structure of real keys and values", "ringkv synth-kv"};
  app.add_option("-o,--output", out, "dump file to write")->required();
  app.add_option("--tokens", s.tokens, "tokens")->capture_default_str();
  app.add_option("--layers", s.layers, "layers")->capture_default_str();
  app.add_option("--kv-heads", s.kv_heads, "KV heads")->capture_default_str();
  app.add_option("--head-dim", s.head_dim, "head_dim")->capture_default_str();
  app.add_option("--queries", s.n_queries, "queries per KV head")->capture_default_str();
  app.add_option("--model-seed", s.model_seed, "seed of the generating model's channels")->capture_default_str();
  app.add_option("--seed", s.seed, "seed of the token sequence")->capture_default_str();
  if (!parse_options(app, args)) return 0;
  if (Communicator::world().rank() != 0) return 0;
  write_kv_dump(out, make_synthetic_kv(s));
  std::cout << "wrote " << out << ": " << s.layers << " layers x " << s.kv_heads << " KV heads x " << s.tokens
            << " tokens, head_dim " << s.head_dim << "\n";
  return 0;
}

}  // namespace ringkv::cli
