// ringkv synth-kv: write a generated KV dump (correlated channels, outlier channels, large-norm tokens).
#include <iostream>

#include "comm/communicator.hpp"
#include "kvstore/kv_dump.hpp"
#include "kvstore/synthetic_kv.hpp"
#include "launch/cli/commands.hpp"
#include "launch/cli/options.hpp"

namespace ringkv::cli {

int run_synth_kv(const std::vector<std::string>& args) {
  po::options_description options("synth-kv options");
  std::string out;
  SyntheticKVOptions s;
  options.add_options()
      ("output,o", po::value(&out)->required(), "dump file to write")
      ("tokens", po::value(&s.tokens)->default_value(s.tokens), "tokens")
      ("layers", po::value(&s.layers)->default_value(s.layers), "layers")
      ("kv-heads", po::value(&s.kv_heads)->default_value(s.kv_heads), "KV heads")
      ("head-dim", po::value(&s.head_dim)->default_value(s.head_dim), "head_dim")
      ("queries", po::value(&s.n_queries)->default_value(s.n_queries), "queries per KV head")
      ("model-seed", po::value(&s.model_seed)->default_value(s.model_seed), "seed of the generating model's channels")
      ("seed", po::value(&s.seed)->default_value(s.seed), "seed of the token sequence");
  po::variables_map vm;
  if (!parse_options("synth-kv", "-o FILE [options]", options, args, vm)) return 0;
  if (Communicator::world().rank() != 0) return 0;
  write_kv_dump(out, make_synthetic_kv(s));
  std::cout << "wrote " << out << ": " << s.layers << " layers x " << s.kv_heads << " KV heads x " << s.tokens
            << " tokens, head_dim " << s.head_dim << "\n";
  return 0;
}

}  // namespace ringkv::cli
