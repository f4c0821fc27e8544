#pragma once
// The subcommands of `ringkv`. Each parses its own options and returns the process exit code.
#include <string>
#include <vector>

namespace ringkv::cli {

int run_analyze(const std::vector<std::string>& args);
int run_synth_kv(const std::vector<std::string>& args);
int run_calibrate(const std::vector<std::string>& args);
int run_generate(const std::vector<std::string>& args);
int run_perplexity(const std::vector<std::string>& args);
int run_logits(const std::vector<std::string>& args);
int run_qa(const std::vector<std::string>& args);
int run_init_model(const std::vector<std::string>& args);
int run_tokenize(const std::vector<std::string>& args);

// The codec specs analyzed when the user names none: every family at about 4, 3, 2 and 1 bits.
std::vector<std::string> default_analysis_specs();

}  // namespace ringkv::cli
