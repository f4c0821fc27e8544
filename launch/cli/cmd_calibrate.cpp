// ringkv calibrate: learn the codec tables of every layer and KV head from a KV dump and write them
// to a calibration file.
#include <chrono>
#include <iostream>
#include <numeric>

#include "comm/communicator.hpp"
#include "kvstore/codec.hpp"
#include "kvstore/kv_dump.hpp"
#include "launch/analysis/codec_analysis.hpp"
#include "launch/cli/commands.hpp"
#include "launch/cli/options.hpp"

namespace ringkv::cli {

int run_calibrate(const std::vector<std::string>& args) {
  std::string dump_path, out;
  std::vector<std::string> specs;
  int page_size = 128;
  CLI::App app{"Learn codec tables (NUQ levels, CQ centroids, RVQ codebooks) from a KV dump", "ringkv calibrate"};
  app.add_option("--kv-dump", dump_path, "KV dump to learn from (ringkv synth-kv writes one)")->required();
  app.add_option("--kv", specs, "codec spec to learn tables for, repeatable")->required();
  app.add_option("--page-size", page_size, "tokens per sealed page (KVQuant normalizes per page)")->capture_default_str();
  app.add_option("-o,--output", out, "calibration file to write")->required();
  if (!parse_options(app, args)) return 0;
  if (Communicator::world().rank() != 0) return 0;

  const auto start = std::chrono::steady_clock::now();
  const KVDump dump = read_kv_dump(dump_path);
  const RopeTable rope = RopeTable::plain(dump.head_dim, dump.rope_theta);
  std::vector<int> positions(dump.tokens);
  std::iota(positions.begin(), positions.end(), 0);
  Calibration cal;
  cal.description = "learned from " + dump_path;
  for (int l = 0; l < dump.layers; ++l)
    for (int h = 0; h < dump.kv_heads; ++h) {
      const std::vector<float> sensitivity = attention_received(dump, l, h);
      const CodecContext ctx{dump.head_dim, page_size, l, h, &cal};
      for (const std::string& text : specs) {
        const KVSpec spec = KVSpec::parse(text);
        learn_codec_tables(spec.key, Role::Key, ctx, rope,
                           {dump.keys_at(l, h), positions.data(), sensitivity.data(), positions.size()}, cal);
        learn_codec_tables(spec.value, Role::Value, ctx, rope,
                           {dump.values_at(l, h), positions.data(), sensitivity.data(), positions.size()}, cal);
      }
    }
  cal.save(out);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::cout << "wrote " << out << ": " << cal.tables().size() << " tables for " << specs.size() << " spec(s), "
            << dump.layers << " layers x " << dump.kv_heads << " KV heads, in " << seconds << " s\n";
  return 0;
}

}  // namespace ringkv::cli
