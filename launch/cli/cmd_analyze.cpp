// ringkv analyze: compare KV codecs on a KV dump (or on generated data when no dump is given).
#include <fstream>
#include <iostream>

#include "comm/communicator.hpp"
#include "kernels/error.hpp"
#include "kvstore/kv_dump.hpp"
#include "kvstore/synthetic_kv.hpp"
#include "launch/analysis/codec_analysis.hpp"
#include "launch/cli/commands.hpp"
#include "launch/cli/options.hpp"

namespace ringkv::cli {

std::vector<std::string> default_analysis_specs() {
  return {"bf16",
          "int:bits=4",
          "int:bits=3",
          "int:bits=2",
          "int:bits=1",
          "kvquant:bits=4,outliers=0.01,sink=1",
          "kvquant:bits=3,outliers=0.01,sink=1",
          "kvquant:bits=3",
          "kvquant:bits=2,outliers=0.01,sink=1,qnorm=1",
          "kvquant:bits=2",
          "kvquant:bits=1,outliers=0.01,sink=1,qnorm=1",
          "cq:channels=2,bits=8",
          "cq:channels=4,bits=8",
          "cq:channels=8,bits=8",
          "cq:channels=8,bits=8,weights=attention",
          "rvq:depth=8,codes=256,group=16",
          "rvq:depth=8,codes=256,group=32",
          "rvq:depth=4,codes=256,group=32"};
}

int run_analyze(const std::vector<std::string>& args) {
  std::string dump_path, calib_path, csv_path;
  std::vector<std::string> specs;
  AnalysisOptions analysis;
  SyntheticKVOptions synthetic;
  CLI::App app{"Bits per element, reconstruction and attention error of KV codecs on a KV dump", "ringkv analyze"};
  app.add_option("--kv-dump", dump_path, "KV dump to analyze (default: generated data)");
  app.add_option("--calib-dump", calib_path,
                 "KV dump to learn codec tables from (default: a second generated sequence; with --kv-dump, the "
                 "analyzed dump itself)");
  app.add_option("--kv", specs,
                 "codec spec, repeatable; KEYSPEC|VALUESPEC for different roles (default: every codec at about 4, 3, "
                 "2 and 1 bits)");
  app.add_option("--page-size", analysis.page_size, "tokens per sealed page")->capture_default_str();
  app.add_option("--top-k", analysis.top_k, "keys compared by the top-k agreement")->capture_default_str();
  app.add_option("--projected-tokens", analysis.projected_tokens, "context length of the projected bits per element")
      ->capture_default_str();
  app.add_option("--csv", csv_path, "also write the codec table as CSV to this file");
  app.add_option("--tokens", synthetic.tokens, "generated data: tokens")->capture_default_str();
  app.add_option("--layers", synthetic.layers, "generated data: layers")->capture_default_str();
  app.add_option("--kv-heads", synthetic.kv_heads, "generated data: KV heads")->capture_default_str();
  app.add_option("--head-dim", synthetic.head_dim, "generated data: head_dim")->capture_default_str();
  if (!parse_options(app, args)) return 0;
  Communicator& comm = Communicator::world();
  analysis.specs = specs.empty() ? default_analysis_specs() : specs;

  KVDump eval, calib;
  std::string source;
  if (dump_path.empty()) {
    synthetic.seed = 1;
    eval = make_synthetic_kv(synthetic);
    synthetic.seed = 2;
    calib = make_synthetic_kv(synthetic);
    source = "generated KV data (ringkv synth-kv), calibrated on a second sequence from the same generator";
  } else {
    eval = read_kv_dump(dump_path);
    calib = calib_path.empty() ? eval : read_kv_dump(calib_path);
    source = dump_path + (calib_path.empty() ? ", calibrated on itself (give --calib-dump for held-out calibration)"
                                             : ", calibrated on " + calib_path);
  }
  const std::vector<CodecReport> reports = analyze_codecs(eval, calib, analysis, comm);
  const std::vector<EntropyReport> entropy = analyze_entropy(eval, comm);
  if (comm.rank() == 0) {
    std::cout << "Data: " << source << "; " << comm.size() << " rank(s)\n\n"
              << format_codec_table(reports, eval, analysis.projected_tokens) << "\n"
              << format_entropy_table(entropy);
    if (!csv_path.empty()) {
      std::ofstream csv(csv_path);
      RINGKV_REQUIRE(csv.good(), "cannot write " + csv_path);
      csv << format_codec_csv(reports);
      RINGKV_REQUIRE(csv.good(), "writing " + csv_path + " failed");
      std::cout << "\nCSV written to " << csv_path << "\n";
    }
  }
  return 0;
}

}  // namespace ringkv::cli
